"""Evaluation metrics and baselines against hand-computed values; the ablation table on the tiny model."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from seren.data.dataset import Dataset
from seren.errors import DataError
from seren.serengpt import evaluate as E


def test_expected_calibration_error_closed_form():
    # bin [0.1,0.2): probs .1,.1 labels 0,1 -> |0.5-0.1| * 2/4 ; bin [0.9,1]: .9,.9 labels 1,1 -> |1-.9| * 2/4
    y = np.array([0, 1, 1, 1])
    p = np.array([0.1, 0.1, 0.9, 0.9])
    assert E.expected_calibration_error(y, p) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert E.expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0])) == 0.0


def test_best_f1_threshold():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.2, 0.7, 0.8, 0.75, 0.9])
    # at t=.7: predict {.7,.8,.75,.9} -> tp 3 fp 1 fn 0 -> F1 6/7 (best); at t=.8: tp 2, fn 1 -> 0.8
    assert E.best_f1_threshold(y, s) == pytest.approx(0.7)


def _frame(scores, labels, users):
    return pd.DataFrame(
        {"user_id": users, "item_id": [f"i{k}" for k in range(len(labels))], "label": labels, "score": scores}
    )


def test_evaluate_scores_perfect_inverse_and_single_class():
    users = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    labels = [1, 0, 0, 0] * 3
    perfect = E.evaluate_scores(_frame([0.9, 0.2, 0.1, 0.3] * 3, labels, users))
    assert perfect["roc_auc"] == 1.0 and perfect["pr_auc"] == pytest.approx(1.0)
    assert perfect["hit@1"] == 1.0 and perfect["ndcg@3"] == pytest.approx(1.0) and perfect["f1"] == 1.0
    assert perfect["n_users"] == 3 and perfect["positive_rate"] == pytest.approx(0.25)
    inverse = E.evaluate_scores(_frame([0.1, 0.8, 0.9, 0.7] * 3, labels, users))
    assert inverse["roc_auc"] == 0.0 and inverse["hit@1"] == 0.0
    # positive ranked last of 4 -> NDCG@3 = 0
    assert inverse["ndcg@3"] == 0.0
    one = E.evaluate_scores(_frame([0.2, 0.3], [0, 0], ["a", "b"]))
    assert one["roc_auc"] is None and one["pr_auc"] is None
    with pytest.raises(DataError, match="no candidates"):
        E.evaluate_scores(_frame([], [], []))
    with pytest.raises(DataError, match="missing score"):
        E.evaluate_scores(_frame([np.nan], [1], ["a"]))


def _toy_dataset() -> tuple[Dataset, pd.DataFrame]:
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    items = pd.DataFrame(
        {
            "item_id": ["sf1", "sf2", "po1", "jz1"],
            "title": ["a", "b", "c", "d"],
            "text": ["a", "b", "c", "d"],
            "category": ["Books/SciFi", "Books/SciFi", "Books/Poetry", "Music/Jazz"],
        }
    )
    ev = [
        # u1 likes sci-fi before the cutoff
        ("u1", "sf1", "like", t0),
        ("u1", "sf2", "skip", t0 + pd.Timedelta(hours=1)),
        # others: po1 liked twice, skipped once; jz1 skipped once; sf2 liked once
        ("u2", "po1", "like", t0),
        ("u3", "po1", "click", t0),
        ("u4", "po1", "skip", t0),
        ("u2", "jz1", "skip", t0),
        ("u3", "sf2", "like", t0),
        # the judged pair itself (u1, po1) and anything after the cutoff must be ignored
        ("u1", "po1", "like", t0 + pd.Timedelta(days=5)),
        ("u4", "jz1", "like", t0 + pd.Timedelta(days=5)),
    ]
    inter = pd.DataFrame(ev, columns=["user_id", "item_id", "event", "timestamp"]).assign(rating=np.nan)
    ds = Dataset(interactions=inter, items=items).validate()
    cands = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1"],
            "item_id": ["sf2", "po1", "jz1"],
            "profile_text": "p",
            "item_text": "t",
            "label": [0, 1, 0],
            "as_of": pd.Timestamp("2024-01-03", tz="UTC"),
        }
    )
    return ds, cands


def test_popularity_baseline_uses_history_before_cutoff_without_the_judged_pair():
    ds, cands = _toy_dataset()
    # positives before the cutoff, judged pairs (u1,sf2),(u1,po1),(u1,jz1) excluded:
    # sf2: u3 like = 1 ; po1: u2,u3 = 2 ; jz1: 0 (u4's like is after the cutoff)
    assert E.popularity_scores(ds, cands).tolist() == pytest.approx([0.5, 1.0, 0.0])


def test_heuristic_is_recommenders_unexpectedness_times_relevance():
    ds, cands = _toy_dataset()
    # u1 history positives (judged pairs excluded): [sf1] (Books/SciFi)
    # unexpectedness: sf2 same sub -> 0 ; po1 same top -> 0.5 ; jz1 other top -> 1
    # relevance (Laplace): sf2 (1+1)/(1+2) ; po1 (2+1)/(3+2) ; jz1 (0+1)/(1+2)
    expected = [0.0, 0.5 * 3 / 5, 1.0 * 1 / 3]
    assert E.heuristic_scores(ds, cands).tolist() == pytest.approx(expected)


def test_run_ablation_table_and_files(tiny_model_dir, tmp_path):
    ds, cands = _toy_dataset()
    cands = pd.concat([cands, cands.assign(user_id="u2", label=[1, 0, 0])], ignore_index=True)
    results, md = E.run_ablation(cands, ds, {"zero-shot base LLM": tiny_model_dir})
    assert results["order"] == ["popularity", "unexpectedness x relevance", "zero-shot base LLM"]
    labels = [0, 1, 0, 1, 0, 0]  # u1 then u2
    # every row's ROC-AUC is sklearn's on that row's 6 scores; the model's scores are the tiny
    # scorer's P(Yes) for the same prompts
    from sklearn.metrics import roc_auc_score

    from seren.llm.scorer import SerenScorer

    llm = SerenScorer.from_pretrained(tiny_model_dir).score(list(cands["profile_text"]), list(cands["item_text"]))
    np.testing.assert_allclose(results["scores"]["zero-shot base LLM"], llm, atol=1e-6)
    for name, row in results["rows"].items():
        assert row["n"] == 6 and row["positive_rate"] == pytest.approx(2 / 6)
        assert row["roc_auc"] == pytest.approx(roc_auc_score(labels, results["scores"][name]), abs=1e-12), name
    assert "| zero-shot base LLM |" in md and "ROC-AUC" in md
    paths = E.write_ablation(results, md, tmp_path / "eval")
    summary = json.loads(paths["json"].read_text())
    assert "scores" not in summary and set(summary["rows"]) == set(results["order"])
    assert "<table" in paths["html"].read_text()
    assert len(pd.read_parquet(paths["scores"])) == 6
    flat = E.flat_metrics(results)
    assert flat["roc_auc"] == flat["zero_shot_base_llm.roc_auc"]
    assert all(isinstance(v, float) and not math.isnan(v) for v in flat.values())


def test_run_ablation_rejects_empty_candidates():
    with pytest.raises(DataError, match="empty"):
        E.run_ablation(pd.DataFrame(columns=E.CANDIDATE_COLUMNS))
    with pytest.raises(DataError, match="lack column"):
        E.run_ablation(pd.DataFrame({"user_id": ["u"]}))
