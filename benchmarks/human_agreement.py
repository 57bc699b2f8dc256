"""Human agreement of SerenGPT on the Serendipity-2018 survey (development half), SmolLM2-135M on CPU.

Every survey judgment is scored leave-one-out (profile from the user's other answered movies)
and compared with people (`seren.serengpt.human.agreement`: ROC-AUC / PR-AUC vs the label "any
of the eight flags", Pearson / Spearman vs the mean of the flags, s5, s8; 95% bootstrap
intervals over users; paired intervals against every baseline). Rows, all on the same judgments:

  baselines           predictedRating, inverse popularity, unexpectedness x relevance, random
  zero-shot           SmolLM2-135M-Instruct with the shared prompt
  behaviour           SerenGPT SFT on ml-latest-small behaviour labels only (no human label)
  human-cv            SerenGPT SFT on human survey labels (+ the same behaviour labels), K-fold
                      cross-validation over USERS: each fold is scored by a model that never
                      saw any of its users
  human-head          the same folds and rows, but only the answer head is fitted
                      (seren.serengpt.head: user-cross-validated logistic regression on the
                      frozen model's answer-slot states, written into the Yes/No rows)
  human-head-only     the head fit on each fold's human rows alone (no behaviour rows)
  The cross-validated rows are scored by one model per fold: they enter the table as within-fold
  percentile ranks (see within_fold_ranks); the JSON also keeps each fold's AUC.
  variants            zero-shot with less movie signal (category only / + all genres / + tags /
                      + liked genres and titles in the profile): what each adds

Stages run separately (`--stage`) and cache per-row scores under --work, so a long CPU run can be
split; `--stage report` (also run after every stage) writes benchmarks/results/human_agreement.json
from every cached column. Load average is recorded at the start and end of each stage.

Run: .venv/bin/python benchmarks/human_agreement.py --stage zero-shot|behaviour|human-cv|human-head|human-head-only|variants|report
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "human_agreement.json"
SHARED = REPO.parent / "shared" / "data"
SURVEY = SHARED / "serendipity-2018-dev"
MOVIELENS = SHARED / "ml-latest-small"
WORK = Path(os.environ.get("SEREN_BENCH_WORK", "/tmp/seren-human-bench"))

TOKEN_BUDGET = 64
PROFILE = {"positive_rating": 3.5, "genre_line": True, "n_titles": 3}
# LoRA on the top 8 of 30 blocks, as benchmarks/serengpt_quality.py. 280 steps of 4 are about one pass
# over a fold's ~1,130 training rows (human, oversampled, + behaviour); the earlier 40 steps saw 160 of
# them. The frozen lower blocks run once per row (cached hidden states), so steps are cheap (~0.8 s).
TRAIN = {"lora_layers": 8, "batch_size": 4, "learning_rate": 3e-3, "max_steps": 280}
FOLDS = 3
ZERO = "zero-shot SmolLM2"
BEHAVIOUR = "SerenGPT (behaviour labels only)"
HUMAN = f"SerenGPT (+ human labels, {FOLDS}-fold user CV)"
HUMAN_HEAD = f"SerenGPT head fit (+ human labels, {FOLDS}-fold user CV)"
HUMAN_HEAD_ONLY = f"SerenGPT head fit (human labels only, {FOLDS}-fold user CV)"
CV_ROWS = (HUMAN, HUMAN_HEAD, HUMAN_HEAD_ONLY)
VARIANTS = {
    "category only": ({}, False, False),
    "+ all genres (item)": ({}, True, False),
    "+ genres + tags (item)": ({}, True, True),
}
FULL_VARIANT = "+ liked genres/titles (profile)"  # the main recipe: the zero-shot row itself


def loads() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def setup() -> tuple[Any, Any, Any, Any]:
    import torch

    from seren.data.movielens import load_movielens
    from seren.data.survey import load_survey
    from seren.llm.base import resolve_base_model
    from seren.profiles.text import load_tokenizer

    torch.set_num_threads(2)
    if not (SURVEY / "answers.csv").is_file() or not (MOVIELENS / "movies.csv").is_file():
        sys.exit(f"survey or MovieLens data not found under {SHARED}: nothing to measure")
    catalogue = load_movielens(MOVIELENS)
    survey = load_survey(SURVEY, catalogue)
    base = resolve_base_model("smollm2")
    return catalogue, survey, base, load_tokenizer(base)


def candidates(survey: Any, tok: Any, profile: dict[str, Any] | None = None, genres: bool = True, tags: bool = True):
    from seren.profiles.build import ProfileConfig
    from seren.serengpt.human import human_candidates

    cfg = ProfileConfig(**(PROFILE if profile is None else profile))
    return human_candidates(survey, tok, TOKEN_BUDGET, cfg, genres=genres, tags=tags)


def recipe() -> dict[str, Any]:
    from seren.profiles.build import ProfileConfig
    from seren.serengpt.recipe import prompt_recipe

    return prompt_recipe(TOKEN_BUDGET, ProfileConfig(**PROFILE))


def cache(name: str, scores: np.ndarray, keys: pd.DataFrame, info: dict[str, Any]) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    f = WORK / "scores.parquet"
    df = pd.read_parquet(f) if f.exists() else keys[["user_id", "item_id"]].copy()
    assert (df["user_id"].to_numpy() == keys["user_id"].to_numpy()).all(), "row order changed between stages"
    df[name] = scores
    df.to_parquet(f, index=False)
    meta_f = WORK / "meta.json"
    meta = json.loads(meta_f.read_text()) if meta_f.exists() else {}
    meta[name] = info
    meta_f.write_text(json.dumps(meta, indent=1, default=str))


def score(model: Any, cands: pd.DataFrame) -> np.ndarray:
    from seren.serengpt.human import score_rows

    return score_rows(model, cands, batch_size=16, progress=False)


def stage_zero_shot(survey: Any, base: Any, tok: Any) -> None:
    t0, l0 = time.perf_counter(), loads()
    c = candidates(survey, tok)
    s = score(base, c)
    info = {"seconds": round(time.perf_counter() - t0, 1), "load_start": l0, "load_end": loads()}
    info["mean_profile_tokens"] = float(c["profile_tokens"].mean())
    cache(ZERO, s, c, info)


def stage_variants(survey: Any, base: Any, tok: Any) -> None:
    for name, (prof, genres, tags) in VARIANTS.items():
        t0, l0 = time.perf_counter(), loads()
        c = candidates(survey, tok, prof, genres, tags)
        s = score(base, c)
        cache(
            f"variant: {name}",
            s,
            c,
            {"seconds": round(time.perf_counter() - t0, 1), "load_start": l0, "load_end": loads()},
        )


def behaviour_training(tok: Any, catalogue: Any) -> pd.DataFrame:
    """ml-latest-small behaviour labels with the benchmark's prompt recipe (cached)."""
    from seren.profiles.build import ProfileConfig, build_profile_snapshots
    from seren.profiles.io import labeling_cutoffs
    from seren.serengpt.labeling import build_labels, build_training_data

    f = WORK / "behaviour_sft_train.parquet"
    if f.exists():
        return pd.read_parquet(f)
    cut = labeling_cutoffs(catalogue.interactions, 0.4, 2)
    prof = build_profile_snapshots(catalogue, tok, cut, token_budget=TOKEN_BUDGET, config=ProfileConfig(**PROFILE))
    labels = build_labels(catalogue, prof, seed=0)
    td = build_training_data(labels, prof, catalogue.items, tok, test_frac=0.25, seed=0, max_candidates=10)
    WORK.mkdir(parents=True, exist_ok=True)
    td.sft_train.to_parquet(f, index=False)
    return td.sft_train


def train(train_df: pd.DataFrame, out: Path, base: Any, method: str = "lora") -> Path:
    from seren.serengpt.sft import train_sft

    return train_sft(base, train_df, out, progress=False, seed=0, prompt=recipe(), method=method, **TRAIN)


def stage_behaviour(survey: Any, base: Any, tok: Any, catalogue: Any) -> None:
    t0, l0 = time.perf_counter(), loads()
    bt = behaviour_training(tok, catalogue)
    model = train(bt, WORK / "behaviour", base)
    t1 = time.perf_counter()
    c = candidates(survey, tok)
    s = score(model, c)
    cache(
        BEHAVIOUR,
        s,
        c,
        {
            "train": TRAIN,
            "n_train_available": int(len(bt)),
            "train_seconds": round(t1 - t0, 1),
            "score_seconds": round(time.perf_counter() - t1, 1),
            "load_start": l0,
            "load_end": loads(),
        },
    )


def stage_human_cv(
    survey: Any, base: Any, tok: Any, catalogue: Any, method: str = "lora", behaviour: bool = True
) -> None:
    """`method`: lora (LoRA SFT) or head (answer head only); `behaviour`: the behaviour rows join the
    human ones (both methods on the same rows), or the fold's human rows alone."""
    from seren.serengpt.human import balance_oversample, human_examples, user_folds
    from seren.serengpt.labeling import SFT_COLUMNS

    t0, l0 = time.perf_counter(), loads()
    bt = behaviour_training(tok, catalogue)
    c = candidates(survey, tok)
    folds = user_folds(c["user_id"], FOLDS, seed=0)
    ex = human_examples(c, tok)
    out = np.full(len(c), np.nan)
    per_fold = []
    for k in range(FOLDS):
        test = folds == k
        assert not set(c.loc[test, "user_id"]) & set(c.loc[~test, "user_id"]), "a user in train and test"
        hum = balance_oversample(ex[~test], seed=k)
        beh = bt.sample(n=min(len(bt), len(hum) // 2) if behaviour else 0, random_state=k)  # human labels dominate 2:1
        train_df = pd.concat([hum[SFT_COLUMNS], beh[SFT_COLUMNS]], ignore_index=True)
        tag = ("" if method == "lora" else f"{method}-") + ("" if behaviour else "only-")
        model = train(train_df, WORK / f"human-{tag}fold{k}", base, method)
        out[test] = score(model, c[test])
        per_fold.append(
            {"fold": k, "n_test": int(test.sum()), "n_human_train": int(len(hum)), "n_behaviour": int(len(beh))}
        )
        print(f"fold {k}: {per_fold[-1]} {time.perf_counter() - t0:.0f}s", flush=True)
    cache(
        HUMAN if method == "lora" else HUMAN_HEAD if behaviour else HUMAN_HEAD_ONLY,
        out,
        c,
        {
            "train": TRAIN if method == "lora" else {"method": method},
            "folds": per_fold,
            "seconds": round(time.perf_counter() - t0, 1),
            "load_start": l0,
            "load_end": loads(),
        },
    )


def within_fold_ranks(scores: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Percentile ranks within each fold. A cross-validated row's folds are scored by different models
    whose score levels differ; pooled raw, those levels meet the folds' different positive rates and
    move the pooled AUC with no ranking skill (measured: +0.085 and -0.075 on the rows here)."""
    from scipy.stats import rankdata

    out = np.empty(len(scores))
    for k in np.unique(folds):
        m = folds == k
        out[m] = rankdata(scores[m]) / m.sum()
    return out


def report(survey: Any, tok: Any, catalogue: Any) -> dict[str, Any]:
    from seren.serengpt.human import agreement, baseline_scores, human_markdown

    c = candidates(survey, tok)
    f = WORK / "scores.parquet"
    cached = pd.read_parquet(f) if f.exists() else c[["user_id", "item_id"]]
    meta = json.loads((WORK / "meta.json").read_text()) if (WORK / "meta.json").exists() else {}
    scores = baseline_scores(c, catalogue, seed=0)
    main = [k for k in (ZERO, BEHAVIOUR, *CV_ROWS) if k in cached.columns]
    scores.update({k: cached[k].to_numpy() for k in main})
    from seren.serengpt.human import roc_auc, user_folds

    folds = user_folds(c["user_id"], FOLDS, seed=0)
    raw = {k: scores[k] for k in CV_ROWS if k in scores}
    for k, v in raw.items():  # one model per fold: pool within-fold percentiles, not score levels
        scores[k] = within_fold_ranks(v, folds)
    res = agreement(c, scores, n_boot=1000, seed=0, models=main)
    md = human_markdown(res)
    variants = {k: cached[k].to_numpy() for k in cached.columns if k.startswith("variant: ")}
    if variants and ZERO in cached.columns:
        variants[f"variant: {FULL_VARIANT}"] = cached[ZERO].to_numpy()
    var_res = None
    if variants:
        var_res = agreement(c, variants, n_boot=1000, seed=0, models=[])
        md += "\n" + human_markdown(var_res, "What the movie signal adds (zero-shot SmolLM2)")
    per_fold = None
    if raw:  # each fold has its own model: AUC within folds too, and what pooling raw levels would say
        y = c["label"].to_numpy()
        per_fold = {
            name: [round(roc_auc(y[folds == k], s[folds == k]), 4) for k in range(FOLDS)] for name, s in scores.items()
        }
        per_fold["pooled raw scores (not comparable across fold models)"] = {
            k: round(roc_auc(y, v), 4) for k, v in raw.items()
        }
    payload = {
        "what": "agreement of SerenGPT judgments with people (Serendipity-2018 development half, leave-one-out)",
        "survey": survey.report,
        "recipe": recipe(),
        "train_budget": TRAIN,
        "folds": FOLDS,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "stages": meta,
        "results": res,
        "variants": var_res,
        "roc_auc_per_cv_fold": per_fold,
        "markdown": md,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    print(md)
    return payload


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--stage",
        default="report",
        choices=["zero-shot", "behaviour", "human-cv", "human-head", "human-head-only", "variants", "report"],
    )
    args = ap.parse_args()
    catalogue, survey, base, tok = setup()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks._machine import Quiet

    meta_f = WORK / "meta.json"
    before = json.loads(meta_f.read_text()) if meta_f.exists() else {}
    with Quiet(f"human_agreement {args.stage}") as quiet:
        if args.stage == "zero-shot":
            stage_zero_shot(survey, base, tok)
        elif args.stage == "variants":
            stage_variants(survey, base, tok)
        elif args.stage == "behaviour":
            stage_behaviour(survey, base, tok, catalogue)
        elif args.stage == "human-cv":
            stage_human_cv(survey, base, tok, catalogue)
        elif args.stage == "human-head":
            stage_human_cv(survey, base, tok, catalogue, method="head")
        elif args.stage == "human-head-only":
            stage_human_cv(survey, base, tok, catalogue, method="head", behaviour=False)
    if args.stage != "report":  # the rows this stage (re)wrote carry how quiet the machine was
        meta = json.loads(meta_f.read_text())
        for name, info in meta.items():
            if info != before.get(name):
                info["quiet"] = quiet.record
        meta_f.write_text(json.dumps(meta, indent=1, default=str))
    report(survey, tok, catalogue)


if __name__ == "__main__":
    main()
