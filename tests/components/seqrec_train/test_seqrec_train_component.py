"""seqrec_train component: unit test via python_func (with and without interest clusters), bad
input, and a kfp.local run through an importer."""

# no `from __future__ import annotations`: KFP reads the pipeline's parameter annotations
import json
from pathlib import Path

import pytest
from kfp import dsl

from components.seqrec_train.component import seqrec_train
from seren.errors import DataError
from seren.exploration.seqrec import SeqRecModel

FAST = dict(epochs=2, patience=2, max_len=20, dim=16, n_blocks=1, seed=0)


def _fake_clusters(small_dataset: Path, out: Path) -> Path:
    """A real Clusters directory (the other stage's format) without computing embeddings."""
    import numpy as np
    import pandas as pd

    from seren.data import load_dataset
    from seren.exploration.clusters import Clusters

    items = load_dataset(small_dataset).items
    top = items["category"].str.split("/").str[0]
    cl = pd.DataFrame({"cluster_id": sorted(top.unique())})
    cl = cl.assign(
        top_id=cl["cluster_id"], description=cl["cluster_id"], keywords=[[c] for c in cl["cluster_id"]], size=1
    )
    asg = pd.DataFrame({"item_id": items["item_id"], "cluster_id": top, "top_id": top})
    return Clusters(cl, asg, np.zeros((len(cl), 2))).save(out)


def test_seqrec_train_unit(artifact, small_dataset: Path, tmp_path: Path) -> None:
    model, metrics = artifact(dsl.Model, "model"), artifact(dsl.Metrics, "metrics")
    seqrec_train.python_func(
        dataset=dsl.Dataset(name="d", uri=str(small_dataset)), model=model, metrics=metrics, **FAST
    )
    m = metrics.metadata
    loaded = SeqRecModel.load(model.path)
    assert loaded.config.dim == 16 and m["n_items"] == loaded.n_items
    assert m["epochs_run"] == 2 and 1 <= m["best_epoch"] <= 2 and model.metadata["best_epoch"] == m["best_epoch"]
    assert 0 <= m["hr_at_10"] <= 1 and 0 <= m["pop_hr_at_10"] <= 1
    assert m["restricted_allowed_share"] == 1.0 and m["restricted_new_cluster_share_at_10"] == 1.0
    assert json.loads((Path(model.path) / "metrics.json").read_text()) == pytest.approx(m)

    # with interest clusters (here: 8 coarse ones) the restricted metrics use them instead of categories
    with_clusters = artifact(dsl.Metrics, "metrics2")
    seqrec_train.python_func(
        dataset=dsl.Dataset(name="d", uri=str(small_dataset)),
        model=artifact(dsl.Model, "model2"),
        metrics=with_clusters,
        clusters=dsl.Artifact(name="c", uri=str(_fake_clusters(small_dataset, tmp_path / "clusters"))),
        **FAST,
    )
    m2 = with_clusters.metadata
    assert m2["hr_at_10"] == m["hr_at_10"]  # same seed, same model
    assert m2["unrestricted_new_cluster_share_at_10"] < m["unrestricted_new_cluster_share_at_10"]  # coarser clusters


def test_seqrec_train_bad_input_unit(artifact, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        seqrec_train.python_func(
            dataset=dsl.Dataset(name="d", uri=str(tmp_path / "nope")),
            model=artifact(dsl.Model, "model"),
            metrics=artifact(dsl.Metrics, "metrics"),
            **FAST,
        )
    assert not (tmp_path / "artifacts" / "model").exists()


def test_seqrec_train_local(kfp_local, local_outputs, small_dataset: Path) -> None:
    @dsl.pipeline(name="seren-test-seqrec-train")
    def run(dataset_uri: str) -> dsl.Model:
        data = dsl.importer(artifact_uri=dataset_uri, artifact_class=dsl.Dataset, reimport=False)
        return seqrec_train(dataset=data.output, epochs=1, patience=1, max_len=20, dim=16, n_blocks=1).outputs["model"]

    task = run(dataset_uri=str(small_dataset))
    model = local_outputs(task)["Output"]
    loaded = SeqRecModel.load(model.path)
    assert loaded.info["epochs_run"] == 1 and loaded.n_items > 0
    assert len(loaded.recommend([], k=5)) == 5
