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
  fold-seeds          how much of a cross-validated number is the fold draw: the head fit on human labels
                      re-run over FOLD_SEEDS user-fold assignments on the base model's answer-slot
                      states (computed once: the head fit's base is frozen, so each fold's fit is
                      seren.serengpt.head.fit_direction on the same states, as train_head does), next
                      to the baselines and a learned non-LLM reference (logistic regression on
                      predictedRating and the movie's year, genres, MovieLens mean rating and count)
                      under the same folds; and the same head fit when the profile also says how the
                      user judged their other answered movies (feedback_profiles; never the judged
                      row's own answer), next to that share itself (the baseline "the user's other
                      answers"); and two stacks under the same folds (logistic regression on
                      predictedRating + that share, with and without the head fit's logit): does the
                      judge add anything the non-LLM signals do not already carry?
  variants            zero-shot with less movie signal (category only / + all genres / + tags /
                      + liked genres and titles in the profile): what each adds

Stages run separately (`--stage`) and cache per-row scores under --work, so a long CPU run can be
split; `--stage report` (also run after every stage) writes benchmarks/results/human_agreement.json
from every cached column. Load average is recorded at the start and end of each stage.

Run: .venv/bin/python benchmarks/human_agreement.py --stage zero-shot|behaviour|human-cv|human-head|human-head-only|fold-seeds|variants|report
"""

from __future__ import annotations

import argparse
import hashlib
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
FOLD_SEEDS = 6
FOLD_SEEDS_FILE = "fold_seeds.json"
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
    """Each variant waits for a quiet machine of its own: the previous one leaves the load at ~2."""
    from benchmarks._machine import Quiet

    for name, (prof, genres, tags) in VARIANTS.items():
        with Quiet(f"variant {name}") as quiet:
            t0, l0 = time.perf_counter(), loads()
            c = candidates(survey, tok, prof, genres, tags)
            s = score(base, c)
            info = {"seconds": round(time.perf_counter() - t0, 1), "load_start": l0, "load_end": loads()}
        cache(f"variant: {name}", s, c, info | {"quiet": quiet.record})


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


def item_features(c: pd.DataFrame, catalogue: Any) -> np.ndarray:
    """What a learned non-LLM judge could use per row: predictedRating and the movie's year, genres,
    MovieLens mean rating and (log) count; missing values at the median."""
    items = catalogue.items.set_index(catalogue.items["item_id"].astype(str))
    ids = c["item_id"].astype(str)
    inter = catalogue.interactions.assign(item_id=catalogue.interactions["item_id"].astype(str))
    genres = ids.map(items["genres"]).fillna("").astype(str)
    f = pd.DataFrame(
        {
            "predicted_rating": c["predicted_rating"].to_numpy(dtype=float),
            "year": ids.map(items["title"]).astype(str).str.extract(r"\((\d{4})\)\s*$")[0].astype(float).to_numpy(),
            "mean_rating": ids.map(inter.groupby("item_id")["rating"].mean()).to_numpy(dtype=float),
            "log_count": np.log1p(ids.map(items["popularity"]).fillna(0.0).to_numpy(dtype=float)),
        }
    )
    for g in sorted({x for gs in genres for x in gs.split("|") if x and x != "(no genres listed)"}):
        f[f"genre {g}"] = genres.str.split("|").map(lambda gs, g=g: g in gs).to_numpy(dtype=float)
    return f.fillna(f.median()).to_numpy(dtype=float)


FEEDBACK = "SerenGPT head fit, profile + the user's other answers (human labels only, 3-fold user CV)"
LEARNED = "learned non-LLM reference (logistic on predictedRating + movie features)"
STACK = "stack, non-LLM: predictedRating + the user's other answers (logistic)"
STACK_LLM = "stack: SerenGPT head fit + predictedRating + the user's other answers (logistic)"


def share_logit(share: np.ndarray) -> np.ndarray:
    """The user's other-answer share on the logit scale (clipped: a share of 0 or 1 from 2-4 answers
    is not certainty), so that a logistic stack can add it to a judge's logit."""
    p = np.clip(share, 0.05, 0.95)
    return np.log(p / (1.0 - p))


def feedback_profiles(c: pd.DataFrame) -> pd.DataFrame:
    """The profile + one line on how the user judged their *other* answered movies (never the judged
    row's own answer; seren.serengpt.human.other_answers): does knowing a user's past serendipity
    feedback help the judge? No line for a user without another answer."""
    from seren.serengpt.human import other_answers

    n = c.groupby("user_id")["label"].transform("count").to_numpy() - 1
    share = other_answers(c)
    line = np.select(
        [share == 0, share < 0.5],
        [
            "This user is rarely surprised: no other movie was a pleasant surprise.",
            "This user is sometimes pleasantly surprised.",
        ],
        "This user is often pleasantly surprised: most other movies were pleasant surprises.",
    )
    return c.assign(profile_text=c["profile_text"] + np.where(n > 0, "\n" + line, ""))


def base_states(ex: pd.DataFrame, base: Any) -> tuple[np.ndarray, bool]:
    """The frozen base model's answer-slot states of every prompt, cached by the prompts' fingerprint."""
    from seren.llm.scorer import SerenScorer

    key = hashlib.sha256("\0".join(ex["prompt"]).encode()).hexdigest()[:16]
    f = WORK / f"base_states-{key}.npy"
    if f.exists():
        return np.load(f), True
    states = SerenScorer.from_pretrained(base).answer_states(ex["prompt"].tolist(), batch_size=16)
    WORK.mkdir(parents=True, exist_ok=True)
    np.save(f, states)
    return states, False


def head_cv(ex: pd.DataFrame, states: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each fold scored by a head fitted on the other folds' rows exactly as stage human-head-only
    trains it (oversampled, then train_head's head_examples): the logit d . h its model computes."""
    from seren.serengpt.head import fit_direction, head_examples
    from seren.serengpt.human import balance_oversample

    row_of = pd.Series(np.arange(len(ex)), index=ex["prompt"].to_numpy())
    row_of = row_of[~row_of.index.duplicated()]  # equal prompts have equal states
    out = np.full(len(ex), np.nan)
    for k in np.unique(folds):
        test = folds == k
        uniq = head_examples(balance_oversample(ex[~test], seed=int(k)))
        idx = row_of.loc[uniq["prompt"]].to_numpy()
        d, _ = fit_direction(states[idx], uniq["y"].to_numpy(), uniq["w"].to_numpy(), uniq["user"].to_numpy())
        out[test] = states[test] @ d
    return out


def learned_cv(feats: np.ndarray, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each fold scored by a balanced L2 logistic regression fitted on the other folds only (features
    standardised with the training folds' moments): the learned reference and the stacks."""
    from sklearn.linear_model import LogisticRegression

    out = np.full(len(y), np.nan)
    for k in np.unique(folds):
        test = folds == k
        mu, sd = feats[~test].mean(0), feats[~test].std(0) + 1e-9
        ref = LogisticRegression(C=0.1, class_weight="balanced", max_iter=5000).fit((feats[~test] - mu) / sd, y[~test])
        out[test] = ref.decision_function((feats[test] - mu) / sd)
    return out


def stage_fold_seeds(survey: Any, base: Any, tok: Any, catalogue: Any) -> None:
    """The human-head-only row, the learned reference and the feedback rows over FOLD_SEEDS user-fold draws."""
    from seren.serengpt.human import OTHER_ANSWERS, baseline_scores, human_examples, pearson, roc_auc, user_folds

    t0, l0 = time.perf_counter(), loads()
    c = candidates(survey, tok)
    ex, ex_fb = human_examples(c, tok), human_examples(feedback_profiles(c), tok)
    (states, cached), (states_fb, cached_fb) = base_states(ex, base), base_states(ex_fb, base)
    t_states = time.perf_counter() - t0
    feats = item_features(c, catalogue)
    y, fm = c["label"].to_numpy(), c["flag_mean"].to_numpy(dtype=float)
    fixed = {k: v for k, v in baseline_scores(c, catalogue, seed=0).items() if k != "random"}
    non_llm = np.column_stack([fixed["predictedRating"], share_logit(fixed[OTHER_ANSWERS])])
    per_seed: dict[str, list[dict[str, float]]] = {}
    for seed in range(FOLD_SEEDS):
        folds = user_folds(c["user_id"], FOLDS, seed=seed)
        head = head_cv(ex, states, folds)
        cols = {
            **fixed,
            LEARNED: learned_cv(feats, y, folds),
            HUMAN_HEAD_ONLY: head,
            FEEDBACK: head_cv(ex_fb, states_fb, folds),
            # does the judge know anything the non-LLM signals do not? (same folds, same learner)
            STACK: learned_cv(non_llm, y, folds),
            STACK_LLM: learned_cv(np.column_stack([head, non_llm]), y, folds),
        }
        for name, s in cols.items():
            r = within_fold_ranks(s, folds)  # every row pooled the same way as the table's CV rows
            per_seed.setdefault(name, []).append({"roc_auc": roc_auc(y, r), "pearson_flag_mean": pearson(r, fm)})
    summary = {
        name: {
            m: {
                "mean": round(float(np.mean([x[m] for x in v])), 4),
                "sd": round(float(np.std([x[m] for x in v])), 4),
                "per_seed": [round(float(x[m]), 4) for x in v],
            }
            for m in ("roc_auc", "pearson_flag_mean")
        }
        for name, v in per_seed.items()
    }
    info = {
        "fold_seeds": list(range(FOLD_SEEDS)),
        "folds": FOLDS,
        "states_seconds": round(t_states, 1),
        "states_cached": [cached, cached_fb],
        "seconds": round(time.perf_counter() - t0, 1),
        "load_start": l0,
        "load_end": loads(),
    }
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / FOLD_SEEDS_FILE).write_text(json.dumps({"info": info, "rows": summary}, indent=1))


def fold_seed_markdown(fs: dict[str, Any]) -> str:
    n = len(fs["info"]["fold_seeds"])
    lines = [
        f"### Over {n} user-fold draws (mean ± sd; each draw pooled as within-fold ranks)",
        "",
        "| scorer | ROC-AUC | Pearson flags | ROC-AUC per draw |",
        "|---|---|---|---|",
    ]
    for name, r in fs["rows"].items():
        a, p = r["roc_auc"], r["pearson_flag_mean"]
        lines.append(
            f"| {name} | {a['mean']:.3f} ± {a['sd']:.3f} | {p['mean']:.3f} ± {p['sd']:.3f} | "
            + ", ".join(f"{x:.3f}" for x in a["per_seed"])
            + " |"
        )
    return "\n".join(lines) + "\n"


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


def label_anatomy(labels: pd.DataFrame) -> dict[str, Any]:
    """How many rows MovieLens brought to the user (s1 "first heard of it from MovieLens" or s2
    "MovieLens influenced me" above 3), serendipitous and not: how a movie reached the user is
    something no prompt built from the movie and the user's other movies carries."""
    pos = labels["serendipitous"].astype(bool).to_numpy()
    via = ((labels["s1"] > 3) | (labels["s2"] > 3)).to_numpy()
    return {
        "n_serendipitous": int(pos.sum()),
        "share_via_movielens_serendipitous": round(float(via[pos].mean()), 4),
        "share_via_movielens_other": round(float(via[~pos].mean()), 4),
    }


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
    fs_f = WORK / FOLD_SEEDS_FILE
    fold_seeds = json.loads(fs_f.read_text()) if fs_f.exists() else None
    if fold_seeds:
        md += "\n" + fold_seed_markdown(fold_seeds)
    payload = {
        "what": "agreement of SerenGPT judgments with people (Serendipity-2018 development half, leave-one-out)",
        "survey": survey.report,
        "label_anatomy": label_anatomy(survey.labels),
        "recipe": recipe(),
        "train_budget": TRAIN,
        "folds": FOLDS,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "stages": meta,
        "results": res,
        "variants": var_res,
        "roc_auc_per_cv_fold": per_fold,
        "fold_seed_sensitivity": fold_seeds,
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
        choices=[
            "zero-shot",
            "behaviour",
            "human-cv",
            "human-head",
            "human-head-only",
            "fold-seeds",
            "variants",
            "report",
        ],
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
        elif args.stage == "fold-seeds":
            stage_fold_seeds(survey, base, tok, catalogue)
    if args.stage == "fold-seeds":
        fs = json.loads((WORK / FOLD_SEEDS_FILE).read_text())
        fs["info"]["quiet"] = quiet.record
        (WORK / FOLD_SEEDS_FILE).write_text(json.dumps(fs, indent=1))
    elif args.stage != "report":  # the rows this stage (re)wrote carry how quiet the machine was
        meta = json.loads(meta_f.read_text())
        for name, info in meta.items():
            if info != before.get(name):
                info.setdefault("quiet", quiet.record)  # a row measured under its own Quiet keeps it
        meta_f.write_text(json.dumps(meta, indent=1, default=str))
    report(survey, tok, catalogue)


if __name__ == "__main__":
    main()
