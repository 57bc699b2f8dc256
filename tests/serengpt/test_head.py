"""Head fit (seren.serengpt.head): only the Yes/No answer head learns, by user-cross-validated
logistic regression on the frozen model's answer-slot states, and every scorer reads the result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seren.errors import DataError
from seren.llm.scorer import SerenScorer
from seren.serengpt.agreement import roc_auc
from seren.serengpt.head import answers, fit_direction
from seren.serengpt.sft import read_model_card, train_sft


def test_fit_direction_recovers_a_planted_direction_with_user_folds() -> None:
    rng = np.random.default_rng(0)
    true = rng.normal(size=16)
    x = rng.normal(size=(400, 16)) * rng.uniform(0.5, 3.0, size=16)  # unequal scales: d is for raw states
    y = (x @ true + rng.normal(scale=2.0, size=400) > 1.5).astype(int)
    users = np.repeat(np.arange(80), 5).astype(str)
    d, info = fit_direction(x, y, groups=users)
    cos = float(d @ true / np.linalg.norm(d) / np.linalg.norm(true))
    assert cos > 0.9, cos
    assert info["cv_by"] == "user" and info["cv_folds"] == 3 and info["n_yes"] == int(y.sum())
    assert info["C"] in info["Cs"] and info["cv_roc_auc"] > 0.85


def test_fit_direction_refuses_too_few_of_one_answer() -> None:
    x = np.zeros((10, 4))
    y = np.array([1, 1] + [0] * 8)
    with pytest.raises(DataError) as err:
        fit_direction(x, y)
    assert err.value.line() == (
        "a head fit needs at least 3 Yes and 3 No examples, got 2 and 8. Fix: label more rows of the rarer answer"
    )


def test_answers_read_the_first_word() -> None:
    import pandas as pd

    assert answers(pd.Series(["Yes", "No", "Yes. A rare find.", "No. Same as before."])).tolist() == [1, 0, 1, 0]


def test_head_fit_ranks_unseen_users_and_every_scorer_reads_it(tiny_model_dir: Path, toy, tmp_path: Path) -> None:
    """The tiny random model ranks the toy task's held-out users badly; the head fit on the other users
    ranks them right, packed and per-pair scoring agree, the input embeddings are untouched."""
    train, test = toy[toy["user_id"] < "u08"], toy[toy["user_id"] >= "u08"]
    out = train_sft(tiny_model_dir, train, tmp_path / "head", method="head", seed=0, progress=False)
    card = read_model_card(out)
    assert card["stage"] == "sft" and card["hyperparameters"]["method"] == "head"
    assert card["train_metrics"]["cv_by"] == "user" and card["data"]["n_train"] == len(train)
    y = test["label"].to_numpy()
    base = SerenScorer.from_pretrained(tiny_model_dir)
    head = SerenScorer.from_pretrained(out)
    p, i = test["profile_text"].tolist(), test["item_text"].tolist()
    before, after = roc_auc(y, base.score(p, i)), roc_auc(y, head.score(p, i))
    assert before < 0.5 and after == 1.0, (before, after)
    np.testing.assert_allclose(head.score(p, i, mode="pair"), head.score(p, i), atol=1e-5)
    # P(Yes) = sigmoid((row_yes - row_no) . h) with the fitted rows +d/2, -d/2
    h = head.answer_states(head.prompts(p, i))
    rows = head.model.get_output_embeddings().weight.detach()
    d = (rows[head.yes_id] - rows[head.no_id]).numpy()
    np.testing.assert_allclose(head.score(p, i), 1 / (1 + np.exp(-(h @ d))), atol=1e-5)
    # no dropped intercept to saturate P(Yes): every held-out score is distinct, none is 0 or 1
    s = head.score(p, i)
    assert len(np.unique(s)) == len(s) and ((s > 0) & (s < 1)).all()
    torch.testing.assert_close(rows[head.yes_id], -rows[head.no_id])
    assert torch.equal(base.model.get_input_embeddings().weight, head.model.get_input_embeddings().weight)
    assert head.model.config.tie_word_embeddings is False
    # same data and settings: the finished stage is returned as is
    assert train_sft(tiny_model_dir, train, tmp_path / "head", method="head", seed=0, progress=False) == out


def test_unknown_sft_method_is_one_line(tiny_model_dir: Path, toy, tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        train_sft(tiny_model_dir, toy, tmp_path / "x", method="ppo", progress=False)
    assert err.value.line() == "unknown SFT method 'ppo'. Fix: use lora or head"
    assert not (tmp_path / "x").exists()


def test_a_head_fit_model_exports_to_onnx_with_the_same_scores(tiny_model_dir: Path, toy, tmp_path: Path) -> None:
    """Untied Yes/No rows travel into the ONNX graph Triton serves: ONNX Runtime gives torch's P(Yes)."""
    import onnxruntime as ort

    from serving.export import export_onnx

    out = train_sft(tiny_model_dir, toy, tmp_path / "head", method="head", seed=0, progress=False)
    scorer = SerenScorer.from_pretrained(out)
    p, i = toy["profile_text"][:8].tolist(), toy["item_text"][:8].tolist()
    onnx = export_onnx(out, tmp_path / "scorer.onnx", packed=False, calibrate=False)
    ids, mask = scorer.encode(p, i)
    sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0].reshape(-1)
    np.testing.assert_allclose(got, scorer.score(p, i), atol=1e-5)
    base = SerenScorer.from_pretrained(tiny_model_dir).score(p, i)
    assert np.abs(got - base).max() > 0.05  # the graph carries the fitted rows, not the base model's


def test_too_few_answers_fail_before_a_stage_dir_is_written(tiny_model_dir: Path, toy, tmp_path: Path) -> None:
    few = toy[(toy["label"] == 0) | (toy.index < 4)]  # 2 Yes rows (items 0, 1 of user 0)
    with pytest.raises(DataError, match="at least 3 Yes"):
        train_sft(tiny_model_dir, few, tmp_path / "x", method="head", progress=False)
    assert not (tmp_path / "x").exists()
