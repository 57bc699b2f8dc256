"""Feast objects for seren: entities, sources, feature views, push sources.

Objects are built by a function rather than at module level because the offline source
locations depend on the target and the data dir (nothing is written into the repo). Schemas
come from ``feature_repo.schema``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Array, Float32, Int64, String

from feature_repo.schema import CREATED, ENTITIES, TIMESTAMP, VIEWS, offline_table_path

FEAST_TYPES = {
    "int64": Int64,
    "float32": Float32,
    "string": String,
    "list<string>": Array(String),
    "list<float32>": Array(Float32),
}


def _source(view: str, data_dir: Path, offline: dict[str, Any]) -> Any:
    kind = offline.get("type", "file")
    if kind in ("file", "dask"):
        return FileSource(
            name=f"{view}_source",
            path=str(offline_table_path(data_dir, view)),
            timestamp_field=TIMESTAMP,
            created_timestamp_column=CREATED,
        )
    if kind == "bigquery":
        from feast.infra.offline_stores.bigquery_source import BigQuerySource

        return BigQuerySource(
            name=f"{view}_source",
            table=f"{offline['project_id']}.{offline['dataset']}.{view}",
            timestamp_field=TIMESTAMP,
            created_timestamp_column=CREATED,
        )
    raise ValueError(f"unsupported offline store type {kind!r}")


def build_objects(data_dir: Path, offline: dict[str, Any]) -> list[Any]:
    """Every Feast object of the repo, with sources placed for this target."""
    entities = {name: Entity(name=name, join_keys=[key], value_type=ValueType.STRING) for name, key in ENTITIES.items()}
    objects: list[Any] = list(entities.values())
    for spec in VIEWS.values():
        source = batch = _source(spec.name, data_dir, offline)
        if spec.push_source:
            source = PushSource(name=spec.push_source, batch_source=batch)
            objects.append(source)
        objects.append(
            FeatureView(
                name=spec.name,
                entities=[entities[spec.entity]],
                ttl=spec.ttl or timedelta(0),
                schema=[Field(name=n, dtype=FEAST_TYPES[t]) for n, t in spec.fields],
                online=True,
                source=source,
                description=spec.description,
                tags={"seren.kind": "push" if spec.push_source else "batch"},
            )
        )
    return objects
