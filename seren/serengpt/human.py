"""Human agreement: how well a serendipity judge agrees with people (Serendipity-2018 survey).

Every survey row is a movie the user liked; the user said how serendipitous it was. Each row is
judged leave-one-out: the profile is built from the user's *other* answered movies only
(`seren.profiles.history.leave_one_out_profiles`), so the judged movie is never in its prompt.

Reported per scorer, on the same rows: ROC-AUC and PR-AUC against the binary serendipity label
(the survey definition, default "any of the eight flags"); Pearson and Spearman against the mean
of the eight flags (graded), s5 ("different from what I usually watch") and s8 ("broadened my
preferences"); 95% bootstrap intervals resampling *users* (rows of one user are not
independent); paired intervals of each model's difference to each baseline. Baselines:
MovieLens's predictedRating, inverse popularity, the project's unexpectedness x relevance
heuristic (leave-one-out history, relevance = positive rate in the catalogue's ratings), random.

Also: the human rows as SFT training examples (source "human", the most trusted), and a
user-fold split for cross-validation (never train and score the same users).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from seren import metrics as M
from seren.data.survey import Survey
from seren.errors import ConfigError, DataError

log = logging.getLogger(__name__)

TARGETS = ("flag_mean", "s5", "s8")
BASELINES = ("predictedRating", "inverse popularity", "unexpectedness x relevance", "random")
SEREN_EVA_PEARSON = 0.215  # SerenEva (arXiv 2507.17290), best LLM set-up
HUMAN_CONFIDENCE_MIN = 0.85  # above every behaviour (<= 0.8) and teacher (0.8) confidence


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


# ------------------------------------------------------------------ rows and baselines


def movie_items(items: pd.DataFrame, genres: bool = True, tags: bool = True) -> pd.DataFrame:
    """MovieLens items with the text rebuilt from the chosen fields (to measure what each adds)."""
    out = items.copy()
    text = out["title"].astype(str)
    if genres and "genres" in out.columns:
        g = out["genres"].fillna("").astype(str).str.replace("|", ", ", regex=False)
        text = text + ". Genres: " + g.where(g.str.len() > 0, "unknown")
    if tags and "tags" in out.columns:
        t = out["tags"].fillna("").astype(str)
        text = text.where(t.str.len() == 0, text + ". Tags: " + t)
    out["text"] = text + "."
    return out


def human_candidates(
    survey: Survey,
    tokenizer: Any,
    token_budget: int,
    profile_config: Any | None = None,
    genres: bool = True,
    tags: bool = True,
) -> pd.DataFrame:
    """One row per survey judgment: leave-one-out profile, item text, label and the human targets."""
    from seren.profiles.history import leave_one_out_profiles
    from seren.profiles.text import item_text

    lab = survey.labels.reset_index(drop=True)
    prof = leave_one_out_profiles(survey.dataset, tokenizer, lab, token_budget=token_budget, config=profile_config)
    items = movie_items(survey.dataset.items, genres, tags)
    texts = pd.Series(item_text(items).to_numpy(), index=items["item_id"].astype(str))
    out = pd.DataFrame(
        {
            "user_id": lab["user_id"].astype(str),
            "item_id": lab["item_id"].astype(str),
            "profile_text": prof["profile_text"].to_numpy(),
            "profile_tokens": prof["profile_tokens"].to_numpy(),
            "history_items": prof["history_items"].to_numpy(),
            "item_text": lab["item_id"].astype(str).map(texts).to_numpy(),
            "label": lab["serendipitous"].astype(int).to_numpy(),
            "flag_mean": lab["flag_mean"].to_numpy(dtype=float),
            "s5": lab["s5"].to_numpy(dtype=float),
            "s8": lab["s8"].to_numpy(dtype=float),
            "predicted_rating": lab["predicted_rating"].to_numpy(dtype=float),
        }
    )
    out.attrs["profile_metrics"] = prof.attrs.get("metrics", {})
    return out


def baseline_scores(cands: pd.DataFrame, catalogue: Any, seed: int = 0) -> dict[str, np.ndarray]:
    """The non-LLM scorers on the same rows. `catalogue`: the MovieLens Dataset (ratings, items)."""
    items = catalogue.items.set_index(catalogue.items["item_id"].astype(str))
    ids = cands["item_id"].astype(str)
    pred = cands["predicted_rating"].to_numpy(dtype=float)
    pred = np.where(np.isfinite(pred), pred, np.nanmean(pred) if np.isfinite(pred).any() else 0.0)
    pop = ids.map(items["popularity"]).fillna(0.0).to_numpy(dtype=float)
    inter = catalogue.interactions
    pos = inter["rating"].fillna(0.0) >= 4.0
    g = (
        pd.DataFrame({"item_id": inter["item_id"].astype(str), "pos": pos})
        .groupby("item_id")["pos"]
        .agg(["sum", "count"])
    )
    rel = ((g["sum"] + 1.0) / (g["count"] + 2.0)).reindex(ids).fillna(0.5).to_numpy()
    sim = M.category_similarity_fn(items["category"].astype(str).to_dict())
    unexp = np.array([M.unexpectedness(i, list(h), sim) for i, h in zip(ids, cands["history_items"], strict=True)])
    return {
        "predictedRating": pred,
        "inverse popularity": 1.0 / (1.0 + pop),
        "unexpectedness x relevance": unexp * rel,
        "random": np.random.default_rng(seed).random(len(cands)),
    }


# ------------------------------------------------------------------ the reusable stage


def score_rows(
    model: str | os.PathLike[str], cands: pd.DataFrame, batch_size: int = 16, progress: bool | None = None
) -> np.ndarray:
    from seren.llm.scorer import SerenScorer

    scorer = SerenScorer.from_pretrained(model)
    return scorer.score(
        cands["profile_text"].tolist(), cands["item_text"].tolist(), batch_size=batch_size, progress=progress
    ).astype(float)


def evaluate_human(
    survey: Survey,
    catalogue: Any,
    models: Mapping[str, str | os.PathLike[str]],
    token_budget: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool | None = None,
    on_row: Callable[[str, float], None] | None = None,
) -> tuple[dict[str, Any], str, pd.DataFrame]:
    """Baselines + every model on the survey rows; (results, markdown, per-row scores).

    Each model is judged with its own prompt recipe (its card's token budget and profile knobs;
    `token_budget` overrides); the baselines use the first model's leave-one-out histories, which
    do not depend on the recipe.
    """
    from seren.llm.base import resolve_base_model
    from seren.profiles.text import load_tokenizer
    from seren.serengpt.recipe import model_recipe, profile_config

    resolved = {name: resolve_base_model(str(m)) for name, m in models.items()}
    recipes = {name: model_recipe(p, token_budget) for name, p in resolved.items()}  # refuse before any work
    frames: dict[tuple[int, str], pd.DataFrame] = {}
    scores: dict[str, np.ndarray] = {}
    cands: pd.DataFrame | None = None
    for name, path in resolved.items():
        rec = recipes[name]
        key = (int(rec["token_budget"]), repr(sorted((rec.get("profile_config") or {}).items())))
        if key not in frames:
            frames[key] = human_candidates(survey, load_tokenizer(path), int(rec["token_budget"]), profile_config(rec))
        t0 = time.perf_counter()
        scores[name] = score_rows(path, frames[key], batch_size, progress)
        if on_row:
            on_row(name, time.perf_counter() - t0)
        cands = frames[key] if cands is None else cands
    if cands is None:
        from seren.serengpt.recipe import BASE_TOKEN_BUDGET

        tok_src = resolve_base_model("smollm2")
        cands = human_candidates(survey, load_tokenizer(tok_src), token_budget or BASE_TOKEN_BUDGET)
    all_scores = {**baseline_scores(cands, catalogue, seed), **scores}
    results = agreement(cands, all_scores, n_boot=n_boot, seed=seed, models=list(scores))
    results["survey"] = survey.report
    results["recipes"] = recipes
    per_row = cands[["user_id", "item_id", "label", *TARGETS]].assign(**{k: v for k, v in all_scores.items()})
    return results, human_markdown(results), per_row


def write_human(
    results: Mapping[str, Any], markdown: str, out_dir: str | os.PathLike[str], per_row: Any = None
) -> dict[str, Path]:
    """human_agreement.json + .md (+ per-row scores.parquet), each written atomically."""
    from seren.io import write_json, write_parquet, write_text

    out = Path(out_dir)
    paths = {
        "json": write_json(out / "human_agreement.json", dict(results)),
        "markdown": write_text(out / "human_agreement.md", markdown),
    }
    if isinstance(per_row, pd.DataFrame):
        paths["scores"] = write_parquet(out / "human_scores.parquet", per_row)
    return paths


def card_section(results: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The model's row (values + intervals) and counts, for `update_model_card(human_agreement=...)`."""
    row = results["rows"][model]
    return {
        "n_rows": results["n_rows"],
        "n_users": results["n_users"],
        **{k: v["value"] for k, v in row.items() if isinstance(v, dict)},
        **{f"{k}_ci": v["ci"] for k, v in row.items() if isinstance(v, dict) and k in ("roc_auc", "pearson_flag_mean")},
        "goal_met": results["goal"].get(model, {}).get("met"),
    }


# ------------------------------------------------------------------ training with human labels


def human_confidence(flag_mean: pd.Series, label: pd.Series) -> pd.Series:
    """Human labels are the most trusted: >= 0.85 (behaviour <= 0.8), more flags -> more confident."""
    fm = flag_mean.fillna(0.0).astype(float)
    conf = np.where(label.astype(int) == 1, HUMAN_CONFIDENCE_MIN + (1 - HUMAN_CONFIDENCE_MIN) * fm, 1.0)
    return pd.Series(conf, index=flag_mean.index).round(4)


def human_examples(cands: pd.DataFrame, tokenizer: Any) -> pd.DataFrame:
    """Survey rows as SFT/preference examples (prompt, completion, chosen, rejected, source, confidence)."""
    from seren.llm import prompts
    from seren.serengpt.labeling import render_prompts

    df = cands[["user_id", "item_id", "label"]].copy()
    df["prompt"] = render_prompts(tokenizer, cands["profile_text"].tolist(), cands["item_text"].tolist())
    df["completion"] = [prompts.completion(bool(v)) for v in df["label"]]
    df["chosen"] = df["completion"]
    df["rejected"] = [prompts.completion(not bool(v)) for v in df["label"]]
    df["source"] = "human"
    df["confidence"] = human_confidence(cands["flag_mean"], cands["label"]).to_numpy()
    df["as_of"] = pd.NaT
    return df


def user_folds(users: pd.Series, k: int, seed: int = 0) -> np.ndarray:
    """Fold id per row, users assigned to folds at random: no user is in two folds."""
    if k < 2:
        raise ConfigError(f"{k} folds: cross-validation needs at least 2", "pass folds >= 2")
    uniq = np.sort(users.astype(str).unique())
    if len(uniq) < k:
        raise DataError(f"{len(uniq)} users for {k} folds", "use fewer folds")
    perm = np.random.default_rng(seed).permutation(uniq)
    fold_of = {u: i % k for i, u in enumerate(perm)}
    return users.astype(str).map(fold_of).to_numpy()


def balance_oversample(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Repeat the minority class until both classes are as frequent (no human row is thrown away)."""
    counts = df["label"].value_counts()
    if len(counts) < 2:
        raise DataError("human training rows hold one class only", "use more users per fold")
    n = int(counts.max())
    parts = [g.sample(n=n, replace=len(g) < n, random_state=seed) for _, g in df.groupby("label")]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def run_human_agreement(
    human_dir: str | os.PathLike[str],
    movies_dir: str | os.PathLike[str],
    model: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    base_model: str = "",
    token_budget: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    definition: str = "any",
) -> tuple[dict[str, float], str]:
    """The stage in one call (component, pipeline): survey + model -> files under `out_dir`, the
    table in the model's card, and flat metrics (`<scorer>_<metric>`, the model's unprefixed)."""
    from seren.data.movielens import load_movielens
    from seren.data.survey import load_survey
    from seren.serengpt.evaluate import slug
    from seren.serengpt.sft import CARD_JSON, update_model_card

    catalogue = load_movielens(movies_dir)
    survey = load_survey(human_dir, catalogue, definition)
    models = ({"zero-shot base LLM": base_model} if base_model else {}) | {"SerenGPT": str(model)}
    results, md, per_row = evaluate_human(
        survey, catalogue, models, token_budget=token_budget, n_boot=n_boot, seed=seed, progress=False
    )
    write_human(results, md, out_dir, per_row)
    if (Path(model) / CARD_JSON).is_file():
        update_model_card(model, human_agreement=card_section(results, "SerenGPT"), human_agreement_markdown=md)
    flat: dict[str, float] = {"n_rows": float(results["n_rows"]), "n_users": float(results["n_users"])}
    for name in results["order"]:
        for k, v in results["rows"][name].items():
            if isinstance(v, dict) and v.get("value") is not None:
                flat[f"{slug(name)}_{k}"] = float(v["value"])
                if name == "SerenGPT":
                    flat[k] = float(v["value"])
    return flat, md
