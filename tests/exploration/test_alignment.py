"""Feedback alignment: novel exposures, aggregation, the scorer, the held-out gain, bad inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from seren.errors import DataError
from seren.exploration.alignment import (
    Aligner,
    TripleFeatures,
    aggregate_feedback,
    alignment_gain,
    novel_exposures,
    replay_rate,
    train_aligner,
)

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def test_novel_exposures_hand_built() -> None:
    rows = [
        ("x1", "click", 0),
        ("y1", "click", 1),
        ("x1", "skip", 2),
        ("z1", "skip", 3),
        ("z1", "like", 4),
        ("w1", "rating", 5),
        ("z1", "skip", 6),
    ]
    inter = pd.DataFrame(
        [
            {
                "user_id": "a",
                "item_id": i,
                "event": e,
                "rating": 2.0 if e == "rating" else float("nan"),
                "timestamp": T0 + pd.Timedelta(hours=h),
            }
            for i, e, h in rows
        ]
    )
    ex = novel_exposures(inter, {"x1": "x", "y1": "y", "z1": "z", "w1": "w"})
    # x, y engaged -> context (x, y); z exposed twice while new (skip, like); then context (y, z): w rated low
    assert ex[["c1", "c2", "c_novel", "positive"]].values.tolist() == [
        ["x", "y", "z", 0],
        ["x", "y", "z", 1],
        ["y", "z", "w", 0],
    ]
    fb = aggregate_feedback(ex, cutoff=T0 + pd.Timedelta(hours=5))
    row = fb[(fb.c_novel == "z")].iloc[0]
    assert (row.trials, row.positives, row.period) == (2, 1, "train") and row.rate == 0.5
    assert fb[fb.c_novel == "w"].iloc[0].period == "test"


def test_aligner_learns_and_gain_is_reported(
    small_aligner: Aligner, small_feedback: Any, novelty_model: Any, tmp_path: Path
) -> None:
    _, feedback = small_feedback
    m = small_aligner.metrics
    assert m["train_triples"] > 0 and set(m["coefficients"]) == {
        "sim_c1",
        "sim_c2",
        "same_top_c1",
        "same_top_c2",
        "log_pop",
        "novel_rate",
        "log_cooc",
    }
    ids = novelty_model.ids
    held = feedback[feedback.period == "test"]
    pairs = sorted(set(zip(held["c1"], held["c2"], strict=True)))  # the pairs replay can judge
    ranked = novelty_model.top_novel(pairs, n=6)
    unaligned = {p: [c for c, _ in r][:2] for p, r in zip(pairs, ranked, strict=True)}
    aligned = {
        p: [c for c, _ in small_aligner.rerank(p, [c for c, _ in r], 2)] for p, r in zip(pairs, ranked, strict=True)
    }
    assert all(
        set(aligned[p]) <= {c for c, _ in r} for p, r in zip(pairs, ranked, strict=True)
    )  # best-of-n picks among the LLM's
    gain = alignment_gain(unaligned, aligned, feedback)

    def replay(table: dict[tuple[str, str], list[str]]) -> tuple[int, int]:
        """Held-out trials/positives of the triples the table recommends, summed by hand."""
        trials = positives = 0
        for r in held.itertuples():
            if r.c_novel in table.get((r.c1, r.c2), []):
                trials, positives = trials + int(r.trials), positives + int(r.positives)
        return trials, positives

    (ut, up), (at, ap) = replay(unaligned), replay(aligned)
    assert (gain["unaligned"]["trials"], gain["unaligned"]["positives"]) == (ut, up) and ut > 0
    assert (gain["aligned"]["trials"], gain["aligned"]["positives"]) == (at, ap) and at > 0
    assert gain["gain_abs"] == pytest.approx(ap / at - up / ut)
    # on this fixed-seed fixture best-of-n by the aligner raises the held-out positive rate
    assert gain["gain_abs"] > 0, gain
    # scores are probabilities and reranking is by them
    p = small_aligner.score([ids[0]] * 3, [ids[1]] * 3, ids[2:5])
    assert ((p > 0) & (p < 1)).all()
    best = small_aligner.rerank((ids[0], ids[1]), ids[2:5], 3)
    assert [s for _, s in best] == sorted(p, reverse=True)
    back = Aligner.load(small_aligner.save(tmp_path / "al"))
    assert np.allclose(back.score([ids[0]] * 3, [ids[1]] * 3, ids[2:5]), p)


def test_replay_counts_only_recommended_triples() -> None:
    fb = pd.DataFrame(
        {
            "c1": ["a", "a", "b"],
            "c2": ["b", "b", "a"],
            "c_novel": ["c", "d", "c"],
            "trials": [4, 6, 10],
            "positives": [2, 0, 5],
            "period": "test",
        }
    )
    assert replay_rate({("a", "b"): ["c"]}, fb) == {"trials": 4, "positives": 2, "rate": 0.5}
    g = alignment_gain({("a", "b"): ["d"], ("b", "a"): []}, {("a", "b"): ["c"], ("b", "a"): ["c"]}, fb)
    assert (
        g["unaligned"]["rate"] == 0.0
        and g["aligned"]["rate"] == pytest.approx(7 / 14)
        and g["gain_abs"] == pytest.approx(0.5)
    )


def test_bad_inputs(small_clusters: Any, small_transitions: Any, small_feedback: Any) -> None:
    exposures, feedback = small_feedback
    feats = TripleFeatures(small_clusters, exposures, small_transitions.sequences, small_transitions.cutoff)
    with pytest.raises(DataError, match="min_support=100000.*Fix: lower min_support"):
        train_aligner(feedback, feats, min_support=100000)
    with pytest.raises(DataError, match="no exposures"):
        aggregate_feedback(exposures.iloc[:0], small_transitions.cutoff)
    with pytest.raises(DataError, match="no held-out feedback"):
        alignment_gain({}, {}, feedback[feedback.period == "train"])
    with pytest.raises(DataError, match="not an aligner directory"):
        Aligner.load("/nonexistent")
