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
heuristic (leave-one-out history, relevance = positive rate in the catalogue's ratings), the
user's other answers (the share of the user's other judged rows that are serendipitous: how much
of the agreement is who judges rather than what is judged), random.

Also: the human rows as SFT training examples (source "human", the most trusted), and a
user-fold split for cross-validation (never train and score the same users).

The agreement statistics and their table are in `seren.serengpt.agreement` (re-exported here).
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

from seren import metrics as M
from seren.data.survey import Survey
from seren.errors import ConfigError, DataError
from seren.serengpt.agreement import (
    BASELINES,
    OTHER_ANSWERS,
    SEREN_EVA_PEARSON,
    TARGETS,
    agreement,
    average_precision,
    human_markdown,
    metric_names,
    pearson,
    roc_auc,
    spearman,
)

__all__ = [
    "BASELINES",
    "HUMAN_CONFIDENCE_MIN",
    "OTHER_ANSWERS",
    "SEREN_EVA_PEARSON",
    "TARGETS",
    "agreement",
    "average_precision",
    "balance_oversample",
    "baseline_scores",
    "card_section",
    "evaluate_human",
    "human_candidates",
    "human_confidence",
    "human_examples",
    "human_markdown",
    "metric_names",
    "movie_items",
    "other_answers",
    "pearson",
    "roc_auc",
    "run_human_agreement",
    "score_rows",
    "spearman",
    "user_folds",
    "write_human",
]

log = logging.getLogger(__name__)

HUMAN_CONFIDENCE_MIN = 0.85  # above every behaviour (<= 0.8) and teacher (0.8) confidence


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
        OTHER_ANSWERS: other_answers(cands),
        "random": np.random.default_rng(seed).random(len(cands)),
    }


def other_answers(cands: pd.DataFrame) -> np.ndarray:
    """Per row, the share of the same user's *other* rows labelled serendipitous (never the row's own
    label). People differ in how readily they call a movie serendipitous (on the Serendipity-2018
    development half 40% of the flag mean's variance is between users), so this share is the
    baseline that tells a judge that ranks movies from one that only ranks people. A user with no
    other row gets the positive rate of every other row."""
    y = cands["label"].astype(float).to_numpy()
    g = pd.Series(y).groupby(cands["user_id"].astype(str).to_numpy())
    n_other = g.transform("count").to_numpy() - 1
    pos_other = g.transform("sum").to_numpy() - y
    rest = (y.sum() - y) / max(len(y) - 1, 1)
    return np.where(n_other > 0, pos_other / np.maximum(n_other, 1), rest)


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
    from seren.llm.card import CARD_JSON, update_model_card
    from seren.serengpt.evaluate import slug

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
