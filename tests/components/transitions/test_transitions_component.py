"""transitions component: python_func over real clusters writes train/test triples + metrics."""

from pathlib import Path

import pytest
from kfp import dsl

from components.transitions.component import transitions
from seren.errors import DataError
from seren.exploration.transitions import Transitions
from seren.exploration.workflow import run_clusters


@pytest.fixture(scope="module")
def clusters_dir(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tr_comp") / "clusters"
    run_clusters(small_dataset, out, n_top=3, n_sub=2)
    return out


def test_transitions_unit(small_dataset: Path, clusters_dir: Path, artifact) -> None:
    out, metrics = artifact(dsl.Artifact, "transitions"), artifact(dsl.Metrics, "metrics")
    transitions.python_func(
        dataset=dsl.Dataset(name="d", uri=str(small_dataset)),
        clusters=dsl.Artifact(name="c", uri=str(clusters_dir)),
        transitions=out,
        metrics=metrics,
    )
    tr = Transitions.load(out.path)
    assert metrics.metadata["test_triples"] == len(tr.test) > 0
    assert metrics.metadata["distinct_train_kept"] == len(tr.train) > 0


def test_transitions_threshold_too_high(small_dataset: Path, clusters_dir: Path, artifact) -> None:
    with pytest.raises(DataError, match="min_count=10000"):
        transitions.python_func(
            dataset=dsl.Dataset(name="d", uri=str(small_dataset)),
            clusters=dsl.Artifact(name="c", uri=str(clusters_dir)),
            transitions=artifact(dsl.Artifact, "t"),
            metrics=artifact(dsl.Metrics, "m"),
            min_count=10000,
        )
