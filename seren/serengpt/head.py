"""Head fit: train only SerenGPT's answer head, the Yes/No decision direction, on frozen hidden states.

Why: a judge's P(Yes) is softmax over two logits, so the decision is linear in the final hidden
state at the answer slot: logit(P(Yes)) = (row_yes - row_no) . h. With a few hundred human
judgments, LoRA SFT fits the training users and ranks unseen users at or below chance
(benchmarks/results/human_agreement.json). An L2 logistic regression on h with its strength chosen
by cross-validation over users fits those few labels without memorising them, and written into the
LM head's Yes/No rows it *is* a SerenGPT model: every scorer (torch, packed, ONNX, Triton) reads it
unchanged, with the same prompt recipe.

The head's rows get +d/2 and -d/2 (untied from the input embeddings, which stay as they were). The
LM head has no bias, so the regression has none either: what is fitted is exactly what is served.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from seren.errors import DataError
from seren.llm.prompts import YES

log = logging.getLogger(__name__)

HEAD_CS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)  # inverse L2 strengths on standardised states
HEAD_FOLDS = 3


def answers(completions: pd.Series) -> np.ndarray:
    """1 where the completion answers Yes (the token the scorer reads), else 0."""
    return completions.astype(str).str.strip().str.split(".", n=1).str[0].eq(YES).astype(int).to_numpy()


def _splits(y: np.ndarray, groups: np.ndarray | None, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    if groups is not None and len(np.unique(groups)) >= folds:
        return list(GroupKFold(n_splits=folds).split(y, y, groups))  # no user on both sides
    return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(y, y))


def check_answers(y: np.ndarray, folds: int = HEAD_FOLDS) -> tuple[int, int]:
    """(n Yes, n No); too few of either for the cross-validation is one line, before anything is written."""
    n_pos, n_neg = int(np.sum(y)), int(len(y) - np.sum(y))
    if min(n_pos, n_neg) < folds:
        raise DataError(
            f"a head fit needs at least {folds} Yes and {folds} No examples, got {n_pos} and {n_neg}",
            "label more rows of the rarer answer",
        )
    return n_pos, n_neg


def fit_direction(
    states: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    cs: tuple[float, ...] = HEAD_CS,
    folds: int = HEAD_FOLDS,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(d, info): d . h is the fitted logit for raw states h.

    The L2 strength is chosen by ROC-AUC over `folds` folds of `groups` (users: the held-out fold's
    users were never fitted), classes balanced, rows weighted by `weights` (label confidence)."""
    from sklearn.linear_model import LogisticRegression

    from seren.serengpt.agreement import roc_auc

    x = np.asarray(states, dtype=np.float64)
    y = np.asarray(labels, dtype=int)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    n_pos, n_neg = check_answers(y, folds)
    splits = _splits(y, groups, folds, seed)
    by = "user" if groups is not None and len(np.unique(groups)) >= folds else "row"
    if any(len(np.unique(y[tr])) < 2 or len(np.unique(y[te])) < 2 for tr, te in splits):
        splits, by = _splits(y, None, folds, seed), "row"  # too few users of one answer: stratify rows instead
    # No intercept and no centring: the LM head has no bias, so the fit is exactly the logit the head
    # computes, d . h (h's large common component acts as the offset). A dropped intercept would shift
    # every logit by a constant that can saturate float32 P(Yes) to 1.0 and tie every score.
    sd = x.std(axis=0) + 1e-6
    z = x / sd

    def model(c: float) -> Any:
        return LogisticRegression(C=c, class_weight="balanced", fit_intercept=False, max_iter=5000)

    def mean_auc(c: float) -> float:
        fits = [model(c).fit(z[tr], y[tr], sample_weight=w[tr]) for tr, _ in splits]
        return float(
            np.mean([roc_auc(y[te], f.decision_function(z[te])) for f, (_, te) in zip(fits, splits, strict=True)])
        )

    cv_auc = [mean_auc(c) for c in cs]
    best = int(np.argmax(cv_auc))
    clf = model(cs[best]).fit(z, y, sample_weight=w)
    d = (clf.coef_[0] / sd).astype(np.float32)
    info = {
        "C": float(cs[best]),
        "Cs": [float(c) for c in cs],
        "cv_folds": len(splits),
        "cv_by": by,
        "cv_roc_auc": round(float(cv_auc[best]), 4),
        "n_yes": n_pos,
        "n_no": n_neg,
    }
    return d, info


def set_answer_direction(model: Any, yes_id: int, no_id: int, direction: np.ndarray) -> None:
    """Write d into the Yes/No rows (+d/2, -d/2) of an untied copy of the LM head, in place."""
    import torch
    from torch import nn

    head = model.get_output_embeddings()
    weight = head.weight.detach().clone()
    d = torch.as_tensor(direction, dtype=weight.dtype)
    weight[yes_id], weight[no_id] = d / 2, -d / 2
    head.weight = nn.Parameter(weight, requires_grad=False)
    model.config.tie_word_embeddings = False
    if hasattr(model.config, "get_text_config"):
        model.config.get_text_config().tie_word_embeddings = False


def head_examples(data: pd.DataFrame) -> pd.DataFrame:
    """(prompt, y, w, user) per distinct (prompt, answer): an oversampled row is one example with more
    weight (its confidence summed), so its state is computed once."""
    frame = pd.DataFrame(
        {
            "prompt": data["prompt"].astype(str),
            "y": answers(data["completion"]),
            "w": data["confidence"].astype(float) if "confidence" in data.columns else 1.0,
            "user": data["user_id"].astype(str) if "user_id" in data.columns else "",
        }
    )
    return frame.groupby(["prompt", "y"], sort=False).agg(w=("w", "sum"), user=("user", "first")).reset_index()


def train_head(
    base_model: str | os.PathLike[str],
    train_df: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    max_examples: int | None = None,
    seed: int = 0,
    progress: bool = True,
    prompt: dict[str, Any] | None = None,
    batch_size: int = 16,
) -> Path:
    """Head fit on `train_df` (prompt, completion; user_id and confidence when present): the merged
    model dir (`out_dir/model`), resumable like train_sft (same data and settings: returned as is)."""
    from seren.llm.base import resolve_base_model
    from seren.llm.scorer import SerenScorer
    from seren.serengpt.stage import (
        balanced_sample,
        finish_stage,
        open_stage,
        quiet_transformers,
        require_columns,
        sft_card,
    )

    require_columns(train_df, ["prompt", "completion"], "head training")
    base_path = resolve_base_model(base_model)
    data = balanced_sample(train_df, max_examples, seed)
    check_answers(answers(data["completion"]))  # a failed fit leaves no stage dir behind
    params = {
        "method": "head",
        "intercept": False,
        "Cs": list(HEAD_CS),
        "folds": HEAD_FOLDS,
        "max_examples": max_examples,
        "seed": seed,
    }
    stage = open_stage(out_dir, params, data, ["prompt", "completion"], base_path)
    if stage.done is not None:
        log.info("head-fit model for this data and settings already exists at %s", stage.done)
        return stage.done
    t0 = time.monotonic()
    uniq = head_examples(data)
    quiet_transformers()
    scorer = SerenScorer.from_pretrained(base_path)
    states = scorer.answer_states(uniq["prompt"].tolist(), batch_size=batch_size, progress=progress)
    groups = uniq["user"].to_numpy() if "user_id" in data.columns else None
    d, info = fit_direction(states, uniq["y"].to_numpy(), uniq["w"].to_numpy(), groups, seed=seed)
    set_answer_direction(scorer.model, scorer.yes_id, scorer.no_id, d)
    seconds = time.monotonic() - t0
    card = sft_card(base_model, base_path, data, train_df)
    card["data"].update(
        {
            "n_unique_prompts": int(len(uniq)),
            "positive_share": float(answers(data["completion"]).mean()),
            "sources": data["source"].value_counts().to_dict() if "source" in data.columns else None,
        }
    )
    card |= {
        "hyperparameters": {
            **params,
            "loss": "L2 logistic regression on the answer-slot hidden state (classes balanced)",
            "trained": "LM head Yes/No rows only (untied from the input embeddings)",
            "dtype": "float32",
        },
        "train_metrics": {**info, "seconds": round(seconds, 1)},
    }
    if prompt:
        card["prompt"] = prompt
    log.info("head fit: C=%s, cross-validated ROC-AUC %.3f, %.0fs", info["C"], info["cv_roc_auc"], seconds)
    return finish_stage(SimpleNamespace(model=scorer.model), scorer.tokenizer, stage, card)
