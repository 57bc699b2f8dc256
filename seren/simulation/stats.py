"""Population metrics and paired bootstrap lifts over users."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of a non-negative vector (0 = equal exposure, -> 1 = all on one item)."""
    x = np.sort(np.asarray(counts, dtype=float))
    n = len(x)
    if n == 0 or x.sum() <= 0:
        return 0.0
    cum = np.cumsum(x)
    return float((n + 1 - 2 * (cum / cum[-1]).sum()) / n)


def entropy_rows(counts: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row's distribution (0 for an empty row)."""
    c = np.asarray(counts, dtype=float)
    tot = c.sum(axis=1, keepdims=True)
    p = np.divide(c, tot, out=np.zeros_like(c), where=tot > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)


def ratio(num: np.ndarray, den: np.ndarray) -> float:
    d = float(np.sum(den))
    return float(np.sum(num)) / d if d > 0 else float("nan")


def paired_lift(
    arm: tuple[np.ndarray, np.ndarray],
    base: tuple[np.ndarray, np.ndarray],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Relative lift of ratio-of-sums metric (num/den per user) of `arm` over `base`, users paired
    (same users in both, same world), with a 95% percentile bootstrap interval over users."""
    an, ad = (np.asarray(a, dtype=float) for a in arm)
    bn, bd = (np.asarray(b, dtype=float) for b in base)
    point = _lift(an.sum(), ad.sum(), bn.sum(), bd.sum())
    rng = np.random.default_rng(seed)
    idx = rng.integers(len(an), size=(n_boot, len(an)))
    boots = _lift(an[idx].sum(1), ad[idx].sum(1), bn[idx].sum(1), bd[idx].sum(1))
    boots = boots[np.isfinite(boots)]
    lo, hi = np.percentile(boots, [2.5, 97.5]) if len(boots) else (float("nan"), float("nan"))
    return {"lift": float(point), "ci_low": float(lo), "ci_high": float(hi), "n_users": len(an)}


def _lift(an: Any, ad: Any, bn: Any, bd: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(an) / np.asarray(ad)) / (np.asarray(bn) / np.asarray(bd)) - 1.0


def mean_ci(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Mean over users with a 95% percentile bootstrap interval."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    idx = np.random.default_rng(seed).integers(len(v), size=(n_boot, len(v)))
    lo, hi = np.percentile(v[idx].mean(axis=1), [2.5, 97.5])
    return {"mean": float(v.mean()), "ci_low": float(lo), "ci_high": float(hi)}


def lift_table(
    per_user: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]], base: str, n_boot: int = 1000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """arm -> metric -> {value, lift, ci_low, ci_high} against `base` (base itself: value only)."""
    out: dict[str, dict[str, Any]] = {}
    for arm, metrics in per_user.items():
        out[arm] = {}
        for m, (num, den) in metrics.items():
            row: dict[str, Any] = {"value": ratio(num, den)}
            if arm != base and base in per_user:
                row.update(paired_lift((num, den), per_user[base][m], n_boot, seed))
            out[arm][m] = row
    return out


def paired_diff(arm: np.ndarray, base: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Mean per-user difference arm - base with a 95% paired bootstrap interval (for metrics whose
    base is ~0, where a relative lift is undefined)."""
    d = np.asarray(arm, dtype=float) - np.asarray(base, dtype=float)
    m = mean_ci(d, n_boot, seed)
    return {"diff": m["mean"], "diff_ci_low": m["ci_low"], "diff_ci_high": m["ci_high"]}
