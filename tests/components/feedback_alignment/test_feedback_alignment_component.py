"""feedback_alignment component: aligner dir (scorer + aggregated feedback) and its metrics."""

from pathlib import Path

import pandas as pd
import pytest
from kfp import dsl

from components.feedback_alignment.component import feedback_alignment
from seren.errors import DataError
from seren.exploration.alignment import Aligner


@pytest.fixture(scope="module")
def stages(exploration_stages: dict) -> dict:
    """Stage outputs up to the sequence recommender (tests/components/conftest.py)."""
    return exploration_stages


def _call(small_dataset: Path, stages: dict, artifact, **kw):
    out, metrics = artifact(dsl.Model, "aligner"), artifact(dsl.Metrics, "metrics")
    feedback_alignment.python_func(
        dataset=dsl.Dataset(name="d", uri=str(small_dataset)),
        clusters=dsl.Artifact(name="c", uri=stages["clusters"]),
        transitions=dsl.Artifact(name="t", uri=stages["transitions"]),
        aligner=out,
        metrics=metrics,
        **kw,
    )
    return out, metrics


def test_feedback_alignment_unit(small_dataset: Path, stages: dict, artifact) -> None:
    out, metrics = _call(small_dataset, stages, artifact, min_support=2)
    al = Aligner.load(out.path)
    assert (Path(out.path) / "feedback.parquet").is_file()
    assert metrics.metadata["train_triples"] == al.metrics["train_triples"] > 0
    # the held-out AUC, recomputed by hand: each held-out triple is a positive with weight
    # `positives` and a negative with weight `trials - positives`, scored by the saved aligner
    fb = pd.read_parquet(Path(out.path) / "feedback.parquet")
    te = fb[(fb.period == "test") & fb.c1.isin(al.features.index) & fb.c2.isin(al.features.index)]
    te = te[te.c_novel.isin(al.features.index)]
    p = al.score(te.c1, te.c2, te.c_novel)
    pos, neg = te.positives.to_numpy(float), (te.trials - te.positives).to_numpy(float)
    concordant = sum(
        wp * wn * ((sp > sn) + 0.5 * (sp == sn))
        for sp, wp in zip(p, pos, strict=True)
        for sn, wn in zip(p, neg, strict=True)
    )
    assert metrics.metadata["heldout_auc"] == pytest.approx(concordant / (pos.sum() * neg.sum()), abs=1e-9)
    assert al.metrics["heldout_trials"] == int(te.trials.sum()) > 0


def test_feedback_alignment_no_support(small_dataset: Path, stages: dict, artifact) -> None:
    with pytest.raises(DataError, match="lower min_support"):
        _call(small_dataset, stages, artifact, min_support=10**6)
