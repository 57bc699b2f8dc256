"""write_offline_sources -> feast_apply -> materialize: python_func chain on real artifacts, and the
same chain with kfp.local; both end by reading the online store."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from kfp import dsl

from components.features.component import feast_apply, materialize, write_offline_sources
from seren.data import load_dataset
from seren.errors import SerenError


def _dataset_artifact(small_dataset: Path) -> dsl.Dataset:
    return dsl.Dataset(name="dataset", uri=str(small_dataset))


def _assert_online(data_dir: Path, small_dataset: Path) -> None:
    from feature_repo.store import get_online, get_store

    ds = load_dataset(small_dataset)
    users = sorted(ds.interactions["user_id"].unique())[:5]
    items = sorted(ds.items["item_id"])[:5]
    store = get_store("local", data_dir)
    u = get_online(store, "user_stats", users)
    assert list(u["status"]) == ["ok"] * 5
    expected = ds.interactions[ds.interactions["user_id"].isin(users)].groupby("user_id").size()
    assert u.set_index("user_id")["n_events"].astype(int).to_dict() == expected.to_dict()
    assert list(get_online(store, "item_features", items)["status"]) == ["ok"] * 5


def test_feature_components_unit(small_dataset: Path, tmp_path: Path, artifact) -> None:
    data_dir = tmp_path / "features"
    m1, m2, m3 = (artifact(dsl.Metrics, f"m{i}") for i in range(3))
    out = write_offline_sources.python_func(
        dataset=_dataset_artifact(small_dataset), metrics=m1, data_dir=str(data_dir)
    )
    assert Path(out) == data_dir.resolve()
    ds = load_dataset(small_dataset)
    assert m1.metadata["user_stats_rows"] == ds.interactions["user_id"].nunique()
    assert m1.metadata["item_features_rows"] == len(ds.items)
    assert m1.metadata["user_profile_rows"] == 0  # push-backed: empty until nearline writes
    assert (
        pq.ParquetFile(data_dir / "offline" / "user_stats.parquet").metadata.num_rows == m1.metadata["user_stats_rows"]
    )

    assert feast_apply.python_func(data_dir=out, metrics=m2, target="local") == out
    assert m2.metadata == {"entity_count": 3, "feature_view_count": 5, "push_source_count": 3}

    assert materialize.python_func(data_dir=out, metrics=m3, target="local") == out
    assert m3.metadata["user_stats_rows"] == m1.metadata["user_stats_rows"]
    assert m3.metadata["item_features_rows"] == len(ds.items)
    _assert_online(data_dir, small_dataset)


def test_feature_components_bad_input_unit(tmp_path: Path, artifact) -> None:
    with pytest.raises(SerenError, match="does not exist"):
        write_offline_sources.python_func(
            dataset=dsl.Dataset(name="d", uri=str(tmp_path / "nope")),
            metrics=artifact(dsl.Metrics, "m"),
            data_dir=str(tmp_path / "f"),
        )
    with pytest.raises(SerenError, match="unknown feature store target 'mongo'"):
        feast_apply.python_func(data_dir=str(tmp_path / "f"), metrics=artifact(dsl.Metrics, "m2"), target="mongo")
    with pytest.raises(SerenError, match="not registered"):  # materialize before apply
        materialize.python_func(data_dir=str(tmp_path / "f"), metrics=artifact(dsl.Metrics, "m3"), target="local")


def test_feature_components_local(kfp_local, local_outputs, small_dataset: Path, tmp_path: Path) -> None:
    """Each component as its own kfp.local task (subprocess), chained through their outputs; the
    dataset comes in through an importer (no `from __future__ import annotations` in this file:
    KFP reads the pipeline's annotations as types)."""
    data_dir = tmp_path / "features"

    @dsl.pipeline(name="seren-test-feature-components")
    def chain(dataset_uri: str, data_dir: str) -> str:
        data = dsl.importer(artifact_uri=dataset_uri, artifact_class=dsl.Dataset, reimport=False)
        offline = write_offline_sources(dataset=data.output, data_dir=data_dir)
        applied = feast_apply(data_dir=offline.outputs["Output"], target="local")
        return materialize(data_dir=applied.outputs["Output"], target="local").outputs["Output"]

    task = chain(dataset_uri=str(small_dataset), data_dir=str(data_dir))
    assert Path(local_outputs(task)["Output"]) == data_dir.resolve()
    _assert_online(data_dir, small_dataset)
