"""Calibration of SerenGPT's P(Yes): the map from the model's raw answer probability to the real rate.

SFT trains on class-balanced examples, so the student's Yes/No prior sits near 50/50 while the real
share of serendipitous candidates is far lower: raw P(Yes) ranks well but means nothing as a
probability (the demo judged every candidate "serendipitous"). A monotone map fitted on the
validation users' candidates (natural class ratio) fixes that without changing the ranking.

A map is plain JSON, stored in the model card (`model_card.json` key "calibration") and therefore
in every registry version of the model:

    {"method": "platt", "params": {"a": 1.3, "b": -2.1}, ...}          sigmoid(a * logit(p) + b)
    {"method": "isotonic", "params": {"x": [...], "y": [...]}, ...}     piecewise-linear through (x, y)
    {"method": "identity", "params": {}}                                 (nothing fitted)

A fitted map also carries its `decision_threshold`: the calibrated score at or above which a
candidate is *judged* serendipitous (nearline's kept candidates, the drift report's
judged_serendipitous share). It is rate-matched: the share judged serendipitous equals the
validation users' positive rate. A fixed 0.5 meant "more likely than not", which a small
judge almost never says when ~1 candidate in 9 is serendipitous: the demo judged 0 of 38 nearline
candidates. The rate comes from the validation users' labels; the score quantile may use every
held-out candidate (no label needed; `fit_calibration(population=...)`). `decision_threshold(cal)`
reads it (0.5 for a map without one).

`apply_calibration` is the one function every path uses: numpy arrays (the in-process scorer,
nearline, evaluation) and torch tensors (inside the exported scoring graph, so Triton serves the
calibrated score; written with float elementwise/broadcast ops only so it traces to ONNX and builds in
TensorRT). serving/export.py folds the card's map into both exported graphs and records that in
their metadata ("seren.calibrated", "seren.calibration_sha"); `map_left_to_apply` tells a client
whether a served score still needs the map (an older graph without the flag: yes).
Numpy only at import time (torch is imported lazily for tensors).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ("platt", "isotonic")
CARD_KEY = "calibration"
DEFAULT_THRESHOLD = 0.5
THRESHOLD_RULE = (
    "rate-matched: the share of held-out candidates judged serendipitous equals the validation users' positive rate"
)
_EPS = 1e-6


def identity() -> dict[str, Any]:
    return {"method": "identity", "params": {}}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def ece(labels: Sequence[float] | np.ndarray, probs: Sequence[float] | np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error over equal-width bins (same definition as the evaluation report)."""
    y = np.asarray(labels, dtype=float)
    p = np.clip(np.asarray(probs, dtype=float), 0.0, 1.0)
    if len(p) == 0:
        return 0.0
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    out = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            out += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(out)


def fit_platt(labels: np.ndarray, probs: np.ndarray, c: float = 100.0) -> dict[str, Any]:
    """Logistic regression of the label on logit(P(Yes)), by scikit-learn (L2 on the slope only).

    An SFT model's scores are bimodal (logits near -8 and +2); the hand-written Newton loop this
    replaces had no line search and diverged on such validation sets (slope 7e5, ECE 0.24 on the
    held-out users of a benchmark seed)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels, dtype=float)
    x = _logit(probs)[:, None]
    lr = LogisticRegression(C=c, solver="lbfgs", max_iter=1000).fit(x, y)
    return {"method": "platt", "params": {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}}


def fit_isotonic(labels: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """Centered isotonic regression: pool adjacent violators, then one knot per pooled block at the
    mean score of its rows, linearly interpolated (flat beyond the outer knots).

    The plain PAV step function maps every score inside a block to one value: fitted on a small
    validation set it had three blocks, and every served candidate of the demo came back as 0.250
    (a tie that threw the model's ranking away). Knots at block centres keep the map strictly
    increasing between them, so the ranking survives calibration (Oron & Flournoy, 2017).
    """
    from sklearn.isotonic import IsotonicRegression

    x = np.asarray(probs, dtype=float)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, np.asarray(labels, dtype=float))
    fitted = iso.predict(x)
    levels, block = np.unique(np.round(fitted, 12), return_inverse=True)  # one block per fitted level
    centres = np.bincount(block, weights=x) / np.bincount(block)
    order = np.argsort(centres, kind="stable")
    return {"method": "isotonic", "params": {"x": centres[order].tolist(), "y": levels[order].tolist()}}


def _fit(method: str, labels: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    return fit_platt(labels, probs) if method == "platt" else fit_isotonic(labels, probs)


def fit_calibration(
    labels: Sequence[float] | np.ndarray,
    probs: Sequence[float] | np.ndarray,
    groups: Sequence[Any] | np.ndarray | None = None,
    seed: int = 0,
    folds: int = 2,
    population: Sequence[float] | np.ndarray | None = None,
) -> dict[str, Any]:
    """Fit Platt and isotonic on validation rows; keep the one with the lower cross-fitted Brier score.

    Each method is fitted on all but one fold of the groups (users) and scored on the held-out fold,
    so isotonic's flexibility is not rewarded for memorising the rows it was fitted on. The choice
    uses the Brier score (a proper scoring rule): binned ECE on the ~60 rows of a fold of a small
    validation set is too noisy to choose by. Cross-fitted ECE is recorded too. The winner is then
    refitted on every row. Fewer than 2 classes or 10 rows: the identity map.

    The decision threshold judges the validation rows' positive rate serendipitous among the
    `population` scores (raw; default: the validation rows'). Its quantile needs no label, so a
    caller can pass every held-out candidate: the demo's 6 validation users (54 rows) alone put it
    at their 6th-highest score, 0.394, which judged 1.4% of the other users' candidates (rate 11%).
    """
    y = np.asarray(labels, dtype=float)
    p = np.asarray(probs, dtype=float)
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels for {len(p)} scores")
    base = {"n": int(len(y)), "base_rate": float(y.mean()) if len(y) else None, "raw_ece": ece(y, p)}
    if len(y) < 10 or y.min() == y.max():
        return {**identity(), "selection": {**base, "reason": "fewer than 10 rows or one class"}}
    g = np.asarray(groups if groups is not None else np.arange(len(y)))
    uniq = np.random.default_rng(seed).permutation(np.unique(g))
    k = max(2, min(folds, len(uniq)))
    fold_of = {u: i % k for i, u in enumerate(uniq)}
    fold = np.array([fold_of[u] for u in g])
    cv: dict[str, float] = {}
    cv_ece: dict[str, float] = {}
    for method in METHODS:
        briers, errs, weights = [], [], []
        for f in range(k):
            tr, te = fold != f, fold == f
            if not te.any() or y[tr].min() == y[tr].max():
                continue
            q = np.asarray(apply_calibration(_fit(method, y[tr], p[tr]), p[te]), dtype=float)
            briers.append(float(np.mean((q - y[te]) ** 2)))
            errs.append(ece(y[te], q))
            weights.append(te.sum())
        cv[method] = float(np.average(briers, weights=weights)) if briers else float("inf")
        cv_ece[method] = float(np.average(errs, weights=weights)) if errs else float("inf")
    best = min(METHODS, key=lambda m: (cv[m], METHODS.index(m)))  # ties: Platt (smoother)
    cal = _fit(best, y, p)
    pop = p if population is None else np.asarray(population, dtype=float)
    cal["decision_threshold"] = rate_matched_threshold(np.asarray(apply_calibration(cal, pop), dtype=float), y.mean())
    cal["threshold_rule"] = THRESHOLD_RULE
    cal["selection"] = {
        **base,
        "chosen_by": f"{k}-fold cross-fitted Brier score over validation users",
        "cv_brier": cv,
        "cv_ece": cv_ece,
        "n_groups": int(len(uniq)),
        "fitted_ece": ece(y, apply_calibration(cal, p)),
        "threshold_population": int(len(pop)),
    }
    return cal


def rate_matched_threshold(scores: np.ndarray, rate: float) -> float:
    """The score t such that `scores >= t` holds for round(rate * n) of the rows (at least one):
    the k-th highest score. Ties at t may judge a few more."""
    s = np.sort(np.asarray(scores, dtype=float))[::-1]
    if len(s) == 0:
        return DEFAULT_THRESHOLD
    k = min(max(int(round(float(rate) * len(s))), 1), len(s))
    return float(s[k - 1])


def decision_threshold(cal: dict[str, Any] | None) -> float:
    """The calibrated score at or above which a candidate is judged serendipitous (module docstring);
    0.5 for no map, the identity map or a map fitted before the threshold was recorded."""
    t = (cal or {}).get("decision_threshold")
    return DEFAULT_THRESHOLD if t is None else float(t)


def _check(cal: dict[str, Any] | None) -> str:
    method = (cal or {}).get("method", "identity")
    if method not in (*METHODS, "identity"):
        raise ValueError(f"unknown calibration method {method!r}")
    return method


def apply_calibration(cal: dict[str, Any] | None, probs: Any) -> Any:
    """Calibrated probabilities for raw P(Yes): numpy in, numpy float32 out; torch tensor in, tensor out.

    The one place a raw score becomes the probability seren reports; `None` / identity = unchanged.
    """
    method = _check(cal)
    if method == "identity":
        return probs
    params = cal["params"]  # type: ignore[index]
    if not isinstance(probs, np.ndarray) and type(probs).__module__.startswith("torch"):
        return _apply_torch(method, params, probs)
    p = np.asarray(probs, dtype=np.float64)
    if method == "platt":
        z = np.clip(params["a"] * _logit(p) + params["b"], -60, 60)
        out = 1.0 / (1.0 + np.exp(-z))
    else:
        out = np.interp(p, np.asarray(params["x"], float), np.asarray(params["y"], float))
    return out.astype(np.float32)


def _apply_torch(method: str, params: dict[str, Any], p: Any) -> Any:
    """Same maps as the numpy branch, with float ops only (clamp/log/sigmoid; relu/min/sum) so the map
    traces to ONNX and builds in TensorRT: no searchsorted/bucketize, no integer gathers."""
    import torch

    x = p.to(torch.float32)
    if method == "platt":
        q = x.clamp(_EPS, 1.0 - _EPS)
        return torch.sigmoid(params["a"] * (torch.log(q) - torch.log1p(-q)) + params["b"])
    xs, ys = np.asarray(params["x"], dtype=np.float64), np.asarray(params["y"], dtype=np.float64)
    if len(xs) == 1:
        return torch.full_like(x, float(ys[0]))
    # np.interp as y0 + sum_k slope_k * clamp(p - x_k, 0, x_{k+1} - x_k): one broadcast over the knots
    # (graph size independent of their number); constant below x_0 and above x_last, like np.interp.
    width, rise = np.diff(xs), np.diff(ys)
    keep = (width > 0) & (rise != 0)
    if not keep.any():
        return torch.full_like(x, float(ys[0]))
    lo = torch.tensor(xs[:-1][keep], dtype=torch.float32)
    w = torch.tensor(width[keep], dtype=torch.float32)
    slope = torch.tensor(rise[keep] / width[keep], dtype=torch.float32)
    ramp = torch.minimum(torch.relu(x.unsqueeze(-1) - lo), w)
    return (ramp * slope).sum(-1) + float(ys[0])


def map_json(cal: dict[str, Any] | None) -> str:
    """The map's method and parameters as canonical JSON (what an exported graph records it applies)."""
    method = _check(cal)
    params = {} if method == "identity" else cal["params"]  # type: ignore[index]
    return json.dumps({"method": method, "params": params}, sort_keys=True, separators=(",", ":"))


def fingerprint(cal: dict[str, Any] | None) -> str:
    """Short hash of `map_json`: equal for equal maps (None == identity), so a client can tell whether
    the map a served graph applies is the one its model card carries."""
    import hashlib

    return hashlib.sha256(map_json(cal).encode()).hexdigest()[:16]


def map_left_to_apply(cal: dict[str, Any] | None, graph_calibrated: bool, graph_fingerprint: str | None) -> Any:
    """The map a caller must still apply to a graph's score, so every score is calibrated exactly once.

    A graph exported with its map folded in (`graph_calibrated`, recorded in its metadata) already
    outputs the calibrated probability: nothing is left to apply, and a caller holding a *different*
    map is refused (it holds another model's card). An older graph without the flag outputs raw
    P(Yes): the caller applies `cal` as before.
    """
    from seren.errors import ConfigError

    if not graph_calibrated:
        return cal
    if cal is not None and graph_fingerprint is not None and fingerprint(cal) != graph_fingerprint:
        raise ConfigError(
            f"the served scorer applies calibration map {graph_fingerprint} but the model card given has "
            f"{describe(cal)} ({fingerprint(cal)})",
            "use the card of the model Triton serves (seren nearline --environment ENV), or redeploy",
        )
    return None


def from_card(card: dict[str, Any] | None) -> dict[str, Any] | None:
    """The map a model card carries (None when the model was never calibrated)."""
    cal = (card or {}).get(CARD_KEY)
    if cal is None:
        return None
    _check(cal)
    return cal


def load_calibration(model_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The map in `<model_dir>/model_card.json` (None without a card or without a map)."""
    f = Path(model_dir) / "model_card.json"
    if not f.is_file():
        return None
    return from_card(json.loads(f.read_text()))


def describe(cal: dict[str, Any] | None) -> str:
    """One line for logs and reports."""
    method = _check(cal)
    thr = f", judged at >= {decision_threshold(cal):.3f}" if (cal or {}).get("decision_threshold") is not None else ""
    if method == "platt":
        return f"platt (a={cal['params']['a']:.3f}, b={cal['params']['b']:.3f}{thr})"  # type: ignore[index]
    if method == "isotonic":
        return f"isotonic ({len(cal['params']['x'])} knots{thr})"  # type: ignore[index]
    return "identity (uncalibrated)"
