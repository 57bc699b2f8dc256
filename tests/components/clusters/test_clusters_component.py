"""clusters component: python_func on the small dataset writes a loadable clusters dir + metrics."""

from pathlib import Path

import pytest
from kfp import dsl

from components.clusters.component import clusters
from seren.errors import DataError
from seren.exploration.clusters import Clusters


def test_clusters_unit(small_dataset: Path, artifact) -> None:
    out, metrics = artifact(dsl.Artifact, "clusters"), artifact(dsl.Metrics, "metrics")
    clusters.python_func(
        dataset=dsl.Dataset(name="d", uri=str(small_dataset)), clusters=out, metrics=metrics, n_top=3, n_sub=2, seed=0
    )
    loaded = Clusters.load(out.path)
    assert len(loaded.ids) == 6 == metrics.metadata["n_clusters"]
    assert metrics.metadata["description_unique_share"] == 1.0 and loaded.clusters["description"].is_unique


def test_clusters_too_many_requested(small_dataset: Path, artifact) -> None:
    with pytest.raises(DataError, match="interest clusters requested"):
        clusters.python_func(
            dataset=dsl.Dataset(name="d", uri=str(small_dataset)),
            clusters=artifact(dsl.Artifact, "c"),
            metrics=artifact(dsl.Metrics, "m"),
            n_top=40,
            n_sub=40,
        )
