"""Agreement of serendipity scorers with people: closed-form ranking and correlation metrics,
95% intervals from bootstrap resamples of users, paired differences of each model to each
baseline, and the markdown table (`seren.serengpt.human` builds the rows and runs the stage)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from seren.errors import DataError

TARGETS = ("flag_mean", "s5", "s8")
OTHER_ANSWERS = "the user's other answers"
BASELINES = ("predictedRating", "inverse popularity", "unexpectedness x relevance", OTHER_ANSWERS, "random")
SEREN_EVA_PEARSON = 0.215  # SerenEva (arXiv 2507.17290), best LLM set-up


# ------------------------------------------------------------------ closed-form metrics


def roc_auc(y: np.ndarray, s: np.ndarray) -> float | None:
    """Mann-Whitney AUC with average ranks for ties; None with one class."""
    y = np.asarray(y, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    r = rankdata(np.asarray(s, dtype=float))
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(y: np.ndarray, s: np.ndarray) -> float | None:
    """PR-AUC as average precision over distinct thresholds (sklearn's definition); None without positives."""
    y = np.asarray(y, dtype=float)
    if y.sum() == 0 or y.sum() == len(y):
        return None
    order = np.argsort(-np.asarray(s, dtype=float), kind="mergesort")
    s_sorted, y_sorted = np.asarray(s, dtype=float)[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), len(s_sorted) - 1]  # end of each tie group
    tp = np.cumsum(y_sorted)[last]
    fp = (last + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation over rows where both are finite; None when either is constant."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3:
        return None
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else None


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return None
    return pearson(rankdata(x[ok]), rankdata(y[ok]))


def metric_names() -> list[str]:
    return ["roc_auc", "pr_auc"] + [f"{k}_{t}" for t in TARGETS for k in ("pearson", "spearman")]


def _metrics(df_y: np.ndarray, targets: dict[str, np.ndarray], s: np.ndarray, idx: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {"roc_auc": roc_auc(df_y[idx], s[idx]), "pr_auc": average_precision(df_y[idx], s[idx])}
    for t, v in targets.items():
        out[f"pearson_{t}"] = pearson(s[idx], v[idx])
        out[f"spearman_{t}"] = spearman(s[idx], v[idx])
    return out


def _ci(values: list[float | None]) -> list[float] | None:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if len(v) < 10:
        return None
    return [round(float(np.quantile(v, 0.025)), 4), round(float(np.quantile(v, 0.975)), 4)]


def agreement(
    df: pd.DataFrame,
    scores: Mapping[str, np.ndarray],
    n_boot: int = 1000,
    seed: int = 0,
    models: list[str] | None = None,
) -> dict[str, Any]:
    """The human-agreement table of every scorer on the rows of `df` (user_id, label, TARGETS).

    `models` names the scorers compared with every other (baseline) scorer in paired intervals
    (default: every scorer not in BASELINES).
    """
    for col in ("user_id", "label", *TARGETS):
        if col not in df.columns:
            raise DataError(f"human-agreement rows lack column {col!r}", "build them with human_candidates()")
    if len(df) == 0:
        raise DataError("no human-judged rows to evaluate", "pass a survey with rows whose movie is known")
    y = df["label"].to_numpy().astype(int)
    targets = {t: df[t].to_numpy(dtype=float) for t in TARGETS}
    arr = {k: np.asarray(v, dtype=float) for k, v in scores.items()}
    for k, v in arr.items():
        if len(v) != len(df) or not np.isfinite(v).all():
            raise DataError(f"scorer {k!r}: {len(v)} scores for {len(df)} rows or non-finite values", "score every row")
    users = df["user_id"].astype(str).to_numpy()
    uniq, inv = np.unique(users, return_inverse=True)
    rows_of = [np.flatnonzero(inv == i) for i in range(len(uniq))]
    everything = np.arange(len(df))
    rng = np.random.default_rng(seed)
    boots = [np.concatenate([rows_of[u] for u in rng.integers(0, len(uniq), len(uniq))]) for _ in range(n_boot)]
    models = [m for m in (models if models is not None else [k for k in arr if k not in BASELINES]) if m in arr]
    names = metric_names()
    rows: dict[str, Any] = {}
    samples: dict[str, list[dict[str, Any]]] = {}
    for name, s in arr.items():
        point = _metrics(y, targets, s, everything)
        samples[name] = [_metrics(y, targets, s, b) for b in boots]
        rows[name] = {
            "kind": "baseline" if name in BASELINES else "model",
            **{m: {"value": _round(point[m]), "ci": _ci([b[m] for b in samples[name]])} for m in names},
        }
    paired: dict[str, Any] = {}
    goal: dict[str, Any] = {}
    baselines = [b for b in arr if b not in models]
    for m in models:
        paired[m] = {}
        for b in baselines:
            d = {}
            for key in ("roc_auc", "pearson_flag_mean"):
                pm, pb = rows[m][key]["value"], rows[b][key]["value"]
                diffs = [
                    (x[key] - z[key]) if x[key] is not None and z[key] is not None else None
                    for x, z in zip(samples[m], samples[b], strict=True)
                ]
                d[key] = {"diff": _round(pm - pb) if pm is not None and pb is not None else None, "ci": _ci(diffs)}
            paired[m][b] = d

        def above(key: str, model: str = m) -> bool:
            return all((paired[model][b][key]["ci"] or [0.0])[0] > 0 for b in baselines) if baselines else False

        p = rows[m]["pearson_flag_mean"]["value"]
        goal[m] = {
            "above_every_baseline_roc_auc": above("roc_auc"),
            "above_every_baseline_pearson": above("pearson_flag_mean"),
            "pearson_above_serenEva": bool(p is not None and p > SEREN_EVA_PEARSON),
        }
        goal[m]["met"] = all(goal[m].values())
    return {
        "n_rows": int(len(df)),
        "n_users": int(len(uniq)),
        "positive_rate": round(float(y.mean()), 4),
        "n_boot": int(n_boot),
        "seed": seed,
        "order": list(arr),
        "rows": rows,
        "paired": paired,
        "goal": goal,
        "serenEva_pearson": SEREN_EVA_PEARSON,
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def _cell(r: dict[str, Any], with_ci: bool = True) -> str:
    if r["value"] is None:
        return "n/a"
    if with_ci and r.get("ci"):
        return f"{r['value']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"
    return f"{r['value']:.3f}"


def human_markdown(results: Mapping[str, Any], title: str = "Human agreement (Serendipity-2018)") -> str:
    """One table: every scorer on the same rows, 95% user-bootstrap intervals."""
    lines = [
        f"## {title}",
        "",
        f"{results['n_rows']} judgments of {results['n_users']} users (serendipitous rate "
        f"{results['positive_rate']:.3f}); leave-one-out profiles; 95% intervals from {results['n_boot']} "
        "bootstrap resamples of users. Pearson/Spearman against the mean of the eight flags, s5 and s8.",
        "",
        "| scorer | ROC-AUC | PR-AUC | Pearson flags | Spearman flags | Pearson s5 | Pearson s8 | Spearman s8 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in results["order"]:
        r = results["rows"][name]
        lines.append(
            f"| {name} | {_cell(r['roc_auc'])} | {_cell(r['pr_auc'], False)} | {_cell(r['pearson_flag_mean'])} | "
            f"{_cell(r['spearman_flag_mean'], False)} | {_cell(r['pearson_s5'], False)} | "
            f"{_cell(r['pearson_s8'], False)} | {_cell(r['spearman_s8'], False)} |"
        )
    for m, per in results.get("paired", {}).items():
        best = max(per, key=lambda b: results["rows"][b]["roc_auc"]["value"] or 0.0, default=None)
        if best is None:
            continue
        d = per[best]
        g = results["goal"][m]
        lines += [
            "",
            f"{m} vs the best baseline ({best}): ROC-AUC {_diff(d['roc_auc'])}, Pearson {_diff(d['pearson_flag_mean'])}; "
            f"goal {'met' if g['met'] else 'not met'} (above every baseline: AUC {g['above_every_baseline_roc_auc']}, "
            f"Pearson {g['above_every_baseline_pearson']}; Pearson > {SEREN_EVA_PEARSON}: {g['pearson_above_serenEva']}).",
        ]
    return "\n".join(lines) + "\n"


def _diff(d: dict[str, Any]) -> str:
    if d["diff"] is None:
        return "n/a"
    ci = f" [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]" if d.get("ci") else ""
    return f"{d['diff']:+.3f}{ci}"
