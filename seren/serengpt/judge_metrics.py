"""Metrics of one serendipity judge on held-out candidates: ROC-AUC, PR-AUC, F1 at a threshold
tuned on validation users, expected calibration error raw and after a calibration map fitted on
those users, Brier score, and the ranking view (Hit@1, NDCG@3, MRR) over each user's candidates."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from seren import metrics as M
from seren.errors import DataError
from seren.llm.calibration import apply_calibration, decision_threshold, ece, fit_calibration, identity


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    """ECE over equal-width bins: the calibration module's one definition, so reports and fits agree."""
    return ece(labels, probs, n_bins)


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold (predict positive at >= t) that maximises F1 on these rows."""
    from sklearn.metrics import precision_recall_curve

    labels = np.asarray(labels)
    if labels.min() == labels.max():
        return 0.5
    prec, rec, thr = precision_recall_curve(labels, scores)
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0.0)[:-1]
    return float(thr[int(np.argmax(f1))])


def _split_users(users: np.ndarray, val_frac: float, seed: int) -> tuple[set[str], set[str]]:
    order = np.random.default_rng(seed).permutation(np.sort(np.unique(users)))
    n_val = int(round(val_frac * len(order)))
    n_val = min(max(n_val, 1), len(order) - 1) if len(order) >= 2 else 0
    return set(order[:n_val].tolist()), set(order[n_val:].tolist())


def evaluate_scores(df: pd.DataFrame, val_frac: float = 0.3, seed: int = 0, n_bins: int = 10) -> dict[str, Any]:
    """Metrics of one scorer on `df[user_id, item_id, label, score]`.

    `val_frac` of the users are the validation users: the calibration map and the F1 threshold are
    fitted on them, and ECE, Brier and F1 of the calibrated score are reported on the others, so
    those numbers are not optimistic (`ece_raw`: the raw score on every row). AUCs and ranking
    metrics use every row (calibration is monotone). Undefined metrics (one class) are None.
    """
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    for col in ("user_id", "label", "score"):
        if col not in df.columns:
            raise DataError(f"scores frame lacks column {col!r}", "pass user_id, item_id, label and score")
    if len(df) == 0:
        raise DataError("no candidates to evaluate", "build evaluation candidates for at least one held-out user")
    if df["score"].isna().any():
        raise DataError(f"{int(df['score'].isna().sum())} missing score(s)", "score every candidate")
    y = df["label"].to_numpy().astype(int)
    s = df["score"].to_numpy().astype(float)
    two = y.min() != y.max()
    out: dict[str, Any] = {
        "n": int(len(df)),
        "n_users": int(df["user_id"].nunique()),
        "positive_rate": float(y.mean()),
        "roc_auc": float(roc_auc_score(y, s)) if two else None,
        "pr_auc": float(average_precision_score(y, s)) if two else None,
        "ece_raw": expected_calibration_error(y, s, n_bins),
        "brier_raw": float(np.mean((s - y) ** 2)),
    }
    val_users, test_users = _split_users(df["user_id"].to_numpy(), val_frac, seed)
    val = df["user_id"].isin(val_users).to_numpy()
    test = df["user_id"].isin(test_users).to_numpy() if val.any() else np.ones(len(df), dtype=bool)
    # Calibration (issue 12): a monotone map fitted on the validation users only; ECE/Brier/F1 are
    # the calibrated scores' on the other users, so they are what a served score would achieve.
    users = df["user_id"].astype(str).to_numpy()
    # the decision threshold's score quantile is taken over every held-out row (no label used)
    cal = fit_calibration(y[val], s[val], groups=users[val], seed=seed, population=s) if val.any() else identity()
    c = np.asarray(apply_calibration(cal, s), dtype=float)
    out["calibration"] = cal
    out["ece"] = expected_calibration_error(y[test], c[test], n_bins)
    out["brier"] = float(np.mean((c[test] - y[test]) ** 2))
    out["mean_calibrated_score"] = float(c[test].mean())
    out["val_roc_auc"] = float(roc_auc_score(y[val], s[val])) if val.any() and len(set(y[val])) == 2 else None
    thr = best_f1_threshold(y[val], c[val]) if val.any() else best_f1_threshold(y, c)
    out["threshold"] = thr
    out["f1"] = float(f1_score(y[test], (c[test] >= thr).astype(int), zero_division=0))
    out["judged_share_at_0.5"] = float((c[test] >= 0.5).mean())
    # the share the served model judges serendipitous at its card's decision threshold (the validation
    # users' positive rate, matched over every held-out row's score): on the other users, near their rate
    out["decision_threshold"] = decision_threshold(cal)
    out["judged_share"] = float((c[test] >= out["decision_threshold"]).mean())
    if "item_id" in df.columns:
        ranking = M.rank_by_score(df, ks=(1, 3), seed=seed)
        out.update({k: ranking[k] for k in ("hit@1", "ndcg@3", "mrr") if k in ranking})
        out["ranked_users"] = int(ranking["ranked_users"])
    return out
