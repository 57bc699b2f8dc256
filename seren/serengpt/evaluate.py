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
from seren.data.schema import is_positive
from seren.errors import DataError
from seren.llm.calibration import apply_calibration, fit_calibration, identity

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


# ------------------------------------------------------------------ metrics of one scorer


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    """Sum over equal-width probability bins of |accuracy - confidence| weighted by bin size."""
    labels = np.asarray(labels, dtype=float)
    probs = np.clip(np.asarray(probs, dtype=float), 0.0, 1.0)
    if len(probs) == 0:
        return 0.0
    bins = np.minimum((probs * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(labels[m].mean() - probs[m].mean())
    return float(ece)


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
    cal = fit_calibration(y[val], s[val], groups=users[val], seed=seed) if val.any() else identity()
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
    if "item_id" in df.columns:
        ranking = M.rank_by_score(df, ks=(1, 3), seed=seed)
        out.update({k: ranking[k] for k in ("hit@1", "ndcg@3", "mrr") if k in ranking})
        out["ranked_users"] = int(ranking["ranked_users"])
    return out


# ------------------------------------------------------------------ baselines


def _history(ds: Dataset, candidates: pd.DataFrame, as_of: Any | None) -> pd.DataFrame:
    """Behaviour the baselines may use: before the cutoff, never the judged pairs themselves."""
    inter = ds.interactions
    if as_of is not None:
        inter = inter[inter["timestamp"] < pd.Timestamp(as_of)]
    judged = pd.MultiIndex.from_frame(candidates[["user_id", "item_id"]].astype(str))
    keys = pd.MultiIndex.from_frame(inter[["user_id", "item_id"]].astype(str))
    inter = inter[~keys.isin(judged)]
    return inter.assign(pos=is_positive(inter).to_numpy())


def _by_cutoff(candidates: pd.DataFrame, as_of: Any | None) -> list[tuple[Any | None, np.ndarray]]:
    """Groups of candidate rows that share a cutoff: explicit `as_of`, else each row's profile snapshot."""
    if as_of is not None or "as_of" not in candidates.columns or candidates["as_of"].isna().all():
        return [(as_of, np.arange(len(candidates)))]
    cut = pd.to_datetime(candidates["as_of"], utc=True)
    return [(c, np.flatnonzero((cut == c).to_numpy())) for c in cut.dropna().unique()] + (
        [(None, np.flatnonzero(cut.isna().to_numpy()))] if cut.isna().any() else []
    )


def popularity_scores(ds: Dataset, candidates: pd.DataFrame, as_of: Any | None = None) -> np.ndarray:
    """Positive engagements per item before the cutoff (what a popularity recommender ranks by), in [0, 1]."""
    candidates = candidates.reset_index(drop=True)
    out = np.zeros(len(candidates))
    for cut, rows in _by_cutoff(candidates, as_of):
        hist = _history(ds, candidates, cut)
        counts = hist[hist["pos"]].groupby("item_id").size()
        out[rows] = candidates["item_id"].iloc[rows].astype(str).map(counts).fillna(0.0).to_numpy(dtype=float)
    return out / out.max() if out.max() > 0 else out


def heuristic_scores(ds: Dataset, candidates: pd.DataFrame, as_of: Any | None = None) -> np.ndarray:
    """Recommenders' serendipity: unexpectedness(item | user history) x relevance(item).

    Unexpectedness is 1 - mean category similarity ("Top/Sub": 1 same sub, 0.5 same top) to the
    items the user engaged with before the cutoff; relevance is the item's Laplace-smoothed
    positive rate among exposures to it before the cutoff (other users only: judged pairs are
    excluded).
    """
    candidates = candidates.reset_index(drop=True)
    cats = ds.items.set_index(ds.items["item_id"].astype(str))["category"].astype(str).to_dict()
    sim = M.category_similarity_fn(cats)
    out = np.zeros(len(candidates))
    for cut, rows in _by_cutoff(candidates, as_of):
        hist = _history(ds, candidates, cut)
        g = hist.groupby("item_id")["pos"].agg(["sum", "count"])
        rel = ((g["sum"] + 1.0) / (g["count"] + 2.0)).to_dict()
        positives = hist[hist["pos"]].groupby("user_id")["item_id"].agg(list).to_dict()
        sub = candidates.iloc[rows]
        for r, u, i in zip(rows, sub["user_id"].astype(str), sub["item_id"].astype(str), strict=True):
            out[r] = M.unexpectedness(i, positives.get(u, []), sim) * rel.get(i, 0.5)
    return out


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
    import shutil

    from seren.io import atomic_dir
    from seren.llm.card import CARD_JSON, CARD_MD, read_model_card, write_model_card

    src = Path(model_dir)
    card = read_model_card(src)
    card["calibration"] = selection.get("calibration")
    card["selection"] = {k: v for k, v in selection.items() if k != "calibration"}
    if held_out is not None:
        card.setdefault("metrics", {})["held_out"] = {k: v for k, v in held_out.items() if k != "calibration"}

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    with atomic_dir(out_dir, force=True) as tmp:
        for f in src.iterdir():
            if f.is_file() and f.name not in (CARD_JSON, CARD_MD, ".seren-artifact"):
                link(str(f), str(tmp / f.name))
            elif f.is_dir():
                shutil.copytree(f, tmp / f.name, copy_function=link)
        write_model_card(tmp, card)
    return Path(out_dir)


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


def score_user_items(
    model: str | os.PathLike[str],
    user: str,
    item_ids: list[str],
    data: str | os.PathLike[str] | None = None,
    token_budget: int | None = None,
    batch_size: int = 16,
    history: list[str] | None = None,
    exclude: list[str] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """Score candidates for one user from a dataset: (rows with item_id/score/title/category, profile text).

    The profile is built from the user's whole history, or only from the items in `history`,
    or without the items in `exclude`, with the prompt recipe the model was trained with (its
    card's token budget and profile knobs); items are rendered like in training (`item_text`).
    """
    from seren.data.dataset import load_dataset
    from seren.errors import ConfigError
    from seren.llm.base import resolve_base_model
    from seren.llm.card import read_model_card
    from seren.llm.scorer import SerenScorer
    from seren.profiles.build import build_profiles
    from seren.profiles.history import profile_for_history
    from seren.profiles.text import item_text, load_tokenizer
    from seren.serengpt.recipe import model_recipe, profile_config

    ids = list(dict.fromkeys(str(i).strip() for i in item_ids if str(i).strip()))
    if not ids:
        raise DataError("empty candidate list: nothing to score", "pass item ids, e.g. --items i00001,i00002")
    model_path = resolve_base_model(model)
    source = read_model_card(model_path).get("source", {})
    data = data or source.get("dataset_dir")
    if not data:
        raise ConfigError("no dataset given and the model card names none", "pass --data DIR (the dataset to read)")
    ds = load_dataset(data)
    known = set(ds.interactions["user_id"].astype(str))
    if ds.users is not None:
        known |= set(ds.users["user_id"].astype(str))
    if user not in known:
        raise DataError(f"unknown user id {user!r} in {data}", "pass a user id that appears in the dataset")
    items = ds.items.set_index(ds.items["item_id"].astype(str))
    unknown = [i for i in ids if i not in items.index]
    if unknown:
        raise DataError(
            f"{len(unknown)} unknown item id(s) (e.g. {', '.join(map(repr, unknown[:3]))}) in {data}",
            "pass item ids from the dataset's items table",
        )
    recipe = model_recipe(model_path, token_budget)
    budget, pcfg = int(recipe["token_budget"]), profile_config(recipe)
    tok = load_tokenizer(model_path)
    if history is None and not exclude:
        profile = build_profiles(ds, tok, users=[user], token_budget=budget, config=pcfg)
    else:
        profile = profile_for_history(ds, tok, user, history, exclude, token_budget=budget, config=pcfg)
    profile_text = str(profile["profile_text"].iloc[0])
    texts = item_text(items.loc[ids].reset_index(drop=True)).tolist()
    raw = SerenScorer.from_pretrained(model_path).score(profile_text, texts, batch_size=batch_size)
    from seren.llm.calibration import load_calibration

    probs = apply_calibration(load_calibration(model_path), raw)  # the card's calibrated probability
    rows = [
        {
            "item_id": i,
            "score": float(p),
            "title": str(items.at[i, "title"]),
            "category": str(items.at[i, "category"]),
        }
        for i, p in zip(ids, probs, strict=True)
    ]
    return rows, profile_text
