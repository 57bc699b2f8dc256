"""Evaluation of serendipity judges on held-out users, and the ablation table.

A judge is anything that gives a score per (user, candidate item). On the held-out users'
candidates we report classification quality (ROC-AUC, PR-AUC, F1 at a threshold tuned on a
validation part of the users, expected calibration error, Brier score) and the paper's ranking
view: Hit@1 and NDCG@3 over each user's candidate set.

The ablation compares, in one run: item popularity; the unexpectedness x relevance heuristic
(Recommenders' serendipity formula: 1 - mean category similarity of the item to the user's
positive history, times the item's positive-engagement rate among other users); the zero-shot
base LLM; SFT only; SFT + IPO (and DPO when asked). The baselines only see behaviour before the
profile cutoff and never the judged (user, item) pair itself, like the LLM prompts.

Split by concern: the metrics of one scorer are in `seren.serengpt.judge_metrics`, the non-LLM
baselines in `seren.serengpt.baselines`, one user's ad-hoc scoring (`seren serengpt score`) in
`seren.serengpt.score_items` (all re-exported here); this module runs the ablation, renders it,
flattens its metrics and picks the shipped model.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren import metrics as M
from seren.data.dataset import Dataset
from seren.errors import DataError
from seren.serengpt.baselines import heuristic_scores, popularity_scores
from seren.serengpt.judge_metrics import best_f1_threshold as best_f1_threshold
from seren.serengpt.judge_metrics import evaluate_scores
from seren.serengpt.judge_metrics import expected_calibration_error as expected_calibration_error
from seren.serengpt.score_items import score_user_items as score_user_items

log = logging.getLogger(__name__)

CANDIDATE_COLUMNS = ["user_id", "item_id", "profile_text", "item_text", "label"]
TABLE_COLUMNS = [
    ("roc_auc", "ROC-AUC"),
    ("pr_auc", "PR-AUC"),
    ("f1", "F1@tuned"),
    ("ece_raw", "ECE raw"),
    ("ece", "ECE calibrated"),
    ("hit@1", "Hit@1"),
    ("ndcg@3", "NDCG@3"),
]


# ------------------------------------------------------------------ ablation


def score_with_model(
    model_dir: str | os.PathLike[str], candidates: pd.DataFrame, batch_size: int = 16, progress: bool | None = None
) -> np.ndarray:
    """P(Yes) of a SerenGPT (or zero-shot base) model for every candidate."""
    from seren.llm.relation import profile_input
    from seren.llm.scorer import SerenScorer

    scorer = SerenScorer.from_pretrained(model_dir)
    profiles = candidates["profile_text"].astype(str).tolist()
    if "relation_fields" in candidates.columns:  # structured fields ride along (relation line)
        profiles = [
            profile_input(p, f) for p, f in zip(profiles, candidates["relation_fields"].fillna(""), strict=True)
        ]
    return scorer.score(
        profiles,
        candidates["item_text"].astype(str).tolist(),
        batch_size=batch_size,
        progress=progress,
    )


def check_candidates(candidates: pd.DataFrame) -> pd.DataFrame:
    if candidates is None or len(candidates) == 0:
        raise DataError(
            "the evaluation candidate set is empty", "hold out users with both positive and negative labels"
        )
    missing = [c for c in CANDIDATE_COLUMNS if c not in candidates.columns]
    if missing:
        raise DataError(
            f"evaluation candidates lack column(s) {', '.join(missing)}",
            "pass eval_candidates from build_training_data",
        )
    return candidates.reset_index(drop=True)


def run_ablation(
    candidates: pd.DataFrame,
    dataset: Dataset | None = None,
    models: Mapping[str, str | os.PathLike[str]] | None = None,
    as_of: Any | None = None,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool | None = None,
) -> tuple[dict[str, Any], str]:
    """Score every candidate with each baseline and model; (results dict, markdown table).

    `models` maps a row name ("zero-shot", "sft", "sft+ipo", ...) to a model dir, in table order.
    The baselines need the dataset (skipped without it). Per-row scores are in results["scores"].
    """
    cands = check_candidates(candidates)
    scorers: list[tuple[str, Any]] = []
    if dataset is not None:
        scorers.append(("popularity", lambda: popularity_scores(dataset, cands, as_of)))
        scorers.append(("unexpectedness x relevance", lambda: heuristic_scores(dataset, cands, as_of)))
    for name, path in (models or {}).items():
        scorers.append((name, lambda p=path: score_with_model(p, cands, batch_size, progress)))
    rows: dict[str, dict[str, Any]] = {}
    scores = cands[["user_id", "item_id", "label"]].copy()
    for name, fn in scorers:
        t0 = time.perf_counter()
        s = np.asarray(fn(), dtype=float)
        secs = time.perf_counter() - t0
        scores[name] = s
        rows[name] = {**evaluate_scores(cands.assign(score=s), seed=seed), "seconds": round(secs, 2)}
        log.info("%s: %s", name, rows[name])
    results = {
        "rows": rows,
        "order": list(rows),
        "n_candidates": int(len(cands)),
        "n_users": int(cands["user_id"].nunique()),
        "positive_rate": float(cands["label"].mean()),
        "models": {k: str(v) for k, v in (models or {}).items()},
        "scores": scores,
    }
    return results, ablation_markdown(results)


def _cell(v: Any) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def ablation_markdown(results: Mapping[str, Any], title: str = "SerenGPT ablation") -> str:
    """The ablation as a markdown table (one row per scorer)."""
    head = "| scorer | " + " | ".join(label for _, label in TABLE_COLUMNS) + " | seconds |"
    sep = "|---" * (len(TABLE_COLUMNS) + 2) + "|"
    lines = [
        f"## {title}",
        "",
        f"{results['n_candidates']} candidates of {results['n_users']} held-out users "
        f"(positive rate {results['positive_rate']:.3f}). F1 at the threshold tuned on a validation "
        "part of the users; ECE calibrated: the score mapped by the calibration fitted on those validation users, "
        "measured on the others (ECE raw: raw P(Yes), all rows); Hit@1 / NDCG@3 rank each user's candidates.",
        "",
        head,
        sep,
    ]
    for name in results["order"]:
        r = results["rows"][name]
        lines.append(
            f"| {name} | " + " | ".join(_cell(r.get(k)) for k, _ in TABLE_COLUMNS) + f" | {r.get('seconds', 0):.1f} |"
        )
    return "\n".join(lines) + "\n"


def ablation_html(results: Mapping[str, Any], title: str = "SerenGPT ablation") -> str:
    """A standalone HTML page of the same table (KFP HTML artifact / browser)."""
    import html

    table = pd.DataFrame(
        [{"scorer": n, **{label: results["rows"][n].get(k) for k, label in TABLE_COLUMNS}} for n in results["order"]]
    )
    body = table.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="n/a", border=0)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}td:first-child{text-align:left}</style>"
        f"</head><body><h2>{html.escape(title)}</h2>"
        f"<p>{results['n_candidates']} candidates of {results['n_users']} held-out users, positive rate "
        f"{results['positive_rate']:.3f}.</p>{body}</body></html>\n"
    )


def write_ablation(results: Mapping[str, Any], markdown: str, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """ablation.json (no per-row scores), ablation.md, ablation.html and scores.parquet, atomically each."""
    from seren.io import write_json, write_parquet, write_text

    out = Path(out_dir)
    summary = {k: v for k, v in results.items() if k != "scores"}
    paths = {
        "json": write_json(out / "ablation.json", summary),
        "markdown": write_text(out / "ablation.md", markdown),
        "html": write_text(out / "ablation.html", ablation_html(results)),
    }
    if isinstance(results.get("scores"), pd.DataFrame):
        paths["scores"] = write_parquet(out / "scores.parquet", results["scores"])
    return paths


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_").replace("__", "_")


def flat_metrics(results: Mapping[str, Any], primary: str | None = None) -> dict[str, float]:
    """`<scorer>.<metric>` scalars for every row (e.g. `sft_ipo.hit@1`), plus the primary row's metrics
    unprefixed (`roc_auc`, `hit@1`): seren.metrics.flatten_metrics' one naming scheme."""
    keys = [k for k, _ in TABLE_COLUMNS] + ["brier", "mrr", "val_roc_auc"]
    rows = results["rows"]
    primary = primary or results["order"][-1]
    return M.flatten_metrics(
        {
            **{slug(name): {k: rows[name].get(k) for k in keys} for name in results["order"]},
            **{k: rows[primary].get(k) for k in keys + ["threshold"]},
            "n_candidates": results["n_candidates"],
            "n_users": results["n_users"],
        }
    )


ALIGN_GATE = "the aligned model's ROC-AUC on the validation users beats SFT's (ties keep SFT)"


def select_final(results: Mapping[str, Any], sft_name: str, aligned_name: str) -> dict[str, Any]:
    """Which model ships: the aligned one only when it beats SFT on the validation users.

    The preference stage must earn its place; the decision uses the validation users (the same ones
    the calibration is fitted on), never the users whose metrics are reported. The effect on every
    held-out row is recorded with its sign, whichever model wins.
    """
    rows = results["rows"]
    sft, al = rows[sft_name], rows[aligned_name]
    v_sft, v_al = sft.get("val_roc_auc"), al.get("val_roc_auc")
    passed = v_sft is not None and v_al is not None and v_al > v_sft
    chosen = aligned_name if passed else sft_name
    eff = None if al.get("roc_auc") is None or sft.get("roc_auc") is None else al["roc_auc"] - sft["roc_auc"]
    return {
        "chosen": chosen,
        "alignment_kept": bool(passed),
        "gate": ALIGN_GATE,
        "val_roc_auc": {sft_name: v_sft, aligned_name: v_al},
        "roc_auc": {sft_name: sft.get("roc_auc"), aligned_name: al.get("roc_auc")},
        "alignment_effect_roc_auc": eff,
        "calibration": rows[chosen].get("calibration"),
    }


def selection_markdown(sel: Mapping[str, Any]) -> str:
    from seren.llm.calibration import describe

    v = sel["val_roc_auc"]
    names = list(v)
    fmt = {k: _cell(x) for k, x in v.items()}
    eff = sel.get("alignment_effect_roc_auc")
    return (
        f"\nShipped model: **{sel['chosen']}** (alignment gate: {sel['gate']}; validation ROC-AUC "
        f"{names[0]} {fmt[names[0]]}, {names[1]} {fmt[names[1]]}; alignment effect on all held-out rows "
        f"{'n/a' if eff is None else f'{eff:+.3f}'}). Calibration: {describe(sel.get('calibration'))}.\n"
    )


def finalize_model(
    model_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    selection: Mapping[str, Any],
    held_out: Mapping[str, Any] | None = None,
) -> Path:
    """The shipped model: `model_dir`'s files (hard links when possible) + a card with the
    calibration map and the selection, written atomically at `out_dir`."""
    from seren.llm.card import copy_model_with_card, read_model_card

    src = Path(model_dir)
    card = read_model_card(src)
    card["calibration"] = selection.get("calibration")
    card["selection"] = {k: v for k, v in selection.items() if k != "calibration"}
    if held_out is not None:
        card.setdefault("metrics", {})["held_out"] = {k: v for k, v in held_out.items() if k != "calibration"}

    return copy_model_with_card(src, out_dir, card, force=True)


def evaluate_artifacts(
    training_data_dir: str | os.PathLike[str],
    dataset_dir: str | os.PathLike[str],
    models: Mapping[str, str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    batch_size: int = 16,
    seed: int = 0,
    model_out: str | os.PathLike[str] | None = None,
    sft_name: str = "SFT",
) -> tuple[dict[str, float], str, str]:
    """Ablation over the held-out candidates of a training-data dir; (metrics, markdown, html).

    The last entry of `models` is the aligned model. With `model_out`, the alignment gate picks the
    shipped model (aligned or `sft_name`), which is written there with its calibration map in the
    card (`finalize_model`); the unprefixed metrics are then the shipped model's.
    """
    from seren.data.dataset import load_dataset
    from seren.io import write_json
    from seren.serengpt.labeling import TrainingData

    td = TrainingData.load(training_data_dir)
    ds = load_dataset(dataset_dir)
    results, md = run_ablation(td.eval_candidates, ds, models, batch_size=batch_size, seed=seed)
    primary = None
    if model_out is not None:
        aligned_name = list(models)[-1]
        sel = select_final(results, sft_name, aligned_name)
        results["selection"] = sel
        md += selection_markdown(sel)
        primary = sel["chosen"]
        finalize_model(models[primary], model_out, sel, results["rows"][primary])
    write_ablation(results, md, out_dir)
    if model_out is not None:
        write_json(Path(out_dir) / "calibration.json", results["selection"]["calibration"])
    stats = flat_metrics(results, primary)
    if model_out is not None:
        stats["alignment_kept"] = float(results["selection"]["alignment_kept"])
    return stats, md, ablation_html(results)
