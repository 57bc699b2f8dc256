"""Feast objects for seren: entities, sources, feature views, push sources.

Objects are built by a function rather than at module level because the offline source
locations depend on the target and the data dir (nothing is written into the repo). The view
schemas are declared once in ``VIEWS``; the store wrapper uses the same table to create empty
offline tables for push-backed views and to align pushed frames with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Array, Float32, Int64, String

TIMESTAMP = "event_timestamp"
CREATED = "created"


@dataclass(frozen=True)
class ViewSpec:
    name: str
    entity: str
    fields: tuple[tuple[str, Any], ...]
    ttl: timedelta | None
    push_source: str | None = None
    description: str = ""


ENTITIES: dict[str, str] = {"user": "user_id", "item": "item_id", "cluster_pair": "cluster_pair"}

# ttl is the freshness the *reader* enforces by default (Feast 0.67 ignores TTL on online reads);
# batch snapshots carry no ttl: a statistic does not expire, it is replaced by the next snapshot.
VIEWS: dict[str, ViewSpec] = {
    v.name: v
    for v in (
        ViewSpec(
            "user_stats",
            "user",
            (
                ("n_events", Int64),
                ("n_positive", Int64),
                ("n_skips", Int64),
                ("n_items", Int64),
                ("positive_rate", Float32),
                ("days_since_last_event", Float32),
                ("active_days", Int64),
                ("category_entropy", Float32),
                ("top_categories", String),
                ("price_band", String),
            ),
            None,
            description="Behaviour statistics per user (snapshot at event_timestamp).",
        ),
        ViewSpec(
            "item_features",
            "item",
            (
                ("title", String),
                ("text", String),
                ("category", String),
                ("top_category", String),
                ("popularity", Float32),
                ("price", Float32),
                ("n_positive", Int64),
            ),
            None,
            description="Item metadata and observed engagement.",
        ),
        ViewSpec(
            "user_profile",
            "user",
            (("profile_text", String), ("profile_tokens", Int64)),
            timedelta(days=2),
            push_source="user_profile_push",
            description="SERAL cognition profile, refreshed by the nearline job.",
        ),
        ViewSpec(
            "user_candidates",
            "user",
            (
                ("candidate_item_ids", Array(String)),
                ("candidate_scores", Array(Float32)),
                ("main_item_ids", Array(String)),
            ),
            timedelta(days=2),
            push_source="user_candidates_push",
            description="Top serendipitous candidates scored by SerenGPT, plus the main slate.",
        ),
        ViewSpec(
            "novel_interests",
            "cluster_pair",
            (("novel_clusters", Array(String)), ("novel_scores", Array(Float32))),
            timedelta(days=35),
            push_source="novel_interest_push",
            description="Cluster pair 'c1|c2' -> novel next clusters (retrained monthly).",
        ),
    )
}
PUSH_SOURCES: dict[str, str] = {v.push_source: v.name for v in VIEWS.values() if v.push_source}

_ARROW = {
    Int64: pa.int64(),
    Float32: pa.float32(),
    String: pa.string(),
    Array(String): pa.list_(pa.string()),
    Array(Float32): pa.list_(pa.float32()),
}


def join_key(view: str) -> str:
    return ENTITIES[VIEWS[view].entity]


def arrow_schema(view: str) -> pa.Schema:
    """Column layout of a view's offline table: key, features, event time, created time."""
    spec = VIEWS[view]
    ts = pa.timestamp("us", tz="UTC")
    cols = [pa.field(join_key(view), pa.string())]
    cols += [pa.field(n, _ARROW[t]) for n, t in spec.fields]
    return pa.schema(cols + [pa.field(TIMESTAMP, ts), pa.field(CREATED, ts)])


def offline_table_path(data_dir: Path, view: str) -> Path:
    return Path(data_dir) / "offline" / f"{view}.parquet"


def _source(view: str, data_dir: Path, offline: dict[str, Any]) -> Any:
    kind = offline.get("type", "file")
    if kind == "file":
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
        batch = _source(spec.name, data_dir, offline)
        source = batch
        if spec.push_source:
            source = PushSource(name=spec.push_source, batch_source=batch)
            objects.append(source)
        objects.append(
            FeatureView(
                name=spec.name,
                entities=[entities[spec.entity]],
                ttl=spec.ttl or timedelta(0),
                schema=[Field(name=n, dtype=t) for n, t in spec.fields],
                online=True,
                source=source,
                description=spec.description,
                tags={"seren.kind": "push" if spec.push_source else "batch"},
            )
        )
    return objects
