"""Training data from merged labels: SFT examples, preference pairs (balanced train split) and
ranking candidates, split by user, with the prompts rendered exactly as `prompts.build_prompt`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren.errors import DataError
from seren.io import atomic_dir, write_json
from seren.llm import prompts
from seren.llm.relation import candidate_block
from seren.profiles.text import count_tokens, item_text
from seren.serengpt.labeling.merge import PRECEDENCE
from seren.serengpt.labeling.sources import _utc_ns

SFT_COLUMNS = ["user_id", "item_id", "prompt", "completion", "label", "source", "confidence", "as_of"]
PREF_COLUMNS = ["user_id", "item_id", "prompt", "chosen", "rejected", "label", "source", "confidence", "as_of"]
EVAL_COLUMNS = ["user_id", "item_id", "profile_text", "item_text", "label", "source", "as_of", "relation_fields"]
TABLES = {
    "sft_train": SFT_COLUMNS,
    "sft_test": SFT_COLUMNS,
    "pref_train": PREF_COLUMNS,
    "pref_test": PREF_COLUMNS,
    "eval_candidates": EVAL_COLUMNS,
}


@dataclass
class TrainingData:
    """SFT examples, preference pairs and ranking candidates, split by user."""

    sft_train: pd.DataFrame
    sft_test: pd.DataFrame
    pref_train: pd.DataFrame
    pref_test: pd.DataFrame
    eval_candidates: pd.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)
    labels: pd.DataFrame | None = None  # the merged labels behind the examples (provenance)

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """All tables appear at once (atomic directory swap) or not at all."""
        out_dir = Path(out_dir)
        with atomic_dir(out_dir) as tmp:
            for name in TABLES:
                getattr(self, name).to_parquet(tmp / f"{name}.parquet", index=False)
            if self.labels is not None:
                self.labels.to_parquet(tmp / "labels.parquet", index=False)
            write_json(tmp / "metrics.json", self.metrics)
        return out_dir

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainingData:
        path = Path(path)
        missing = [n for n in TABLES if not (path / f"{n}.parquet").exists()]
        if missing:
            raise DataError(
                f"{path} is not a training-data directory (missing {', '.join(missing)})",
                "run the labeling step (`seren profiles build` then labeling) to create it",
            )
        tables = {n: pd.read_parquet(path / f"{n}.parquet") for n in TABLES}
        metrics = json.loads((path / "metrics.json").read_text()) if (path / "metrics.json").exists() else {}
        labels = pd.read_parquet(path / "labels.parquet") if (path / "labels.parquet").exists() else None
        return cls(**tables, metrics=metrics, labels=labels)


def _split_users(users: np.ndarray, test_frac: float, seed: int) -> tuple[set[str], set[str]]:
    if not 0.0 < test_frac < 1.0:
        raise DataError(f"test fraction {test_frac} is outside (0, 1)", "pass e.g. 0.25")
    if len(users) < 2:
        raise DataError(f"only {len(users)} labeled user(s); a split by user needs at least 2", "label more users")
    order = np.random.default_rng(seed).permutation(np.sort(users))
    n_test = min(max(1, int(round(test_frac * len(order)))), len(order) - 1)
    return set(order[n_test:].tolist()), set(order[:n_test].tolist())


def _balance(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Down-sample the majority class, keeping its most confident examples."""
    counts = df["label"].value_counts()
    if len(counts) < 2:
        only = "positive" if counts.index[0] == 1 else "negative"
        raise DataError(
            f"all {len(df)} training labels are {only}; a serendipity judge needs both classes",
            "use a later/earlier cutoff, add human labels, or a teacher",
        )
    n = int(counts.min())
    shuffled = df.sample(frac=1.0, random_state=seed)
    shuffled = shuffled.sort_values("confidence", ascending=False, kind="stable")
    out = shuffled.groupby("label", sort=True).head(n)
    return out.sort_values(["user_id", "as_of", "item_id"], kind="stable").reset_index(drop=True)


def _candidates(df: pd.DataFrame, max_candidates: int, seed: int) -> pd.DataFrame:
    """Per held-out user with both classes: up to `max_candidates` labeled items (half positives
    max); an item judged in several snapshots keeps its latest judgment."""
    df = df.sort_values("as_of", kind="stable").drop_duplicates(["user_id", "item_id"], keep="last")
    both = df.groupby("user_id")["label"].transform("nunique") == 2
    d = df[both].sample(frac=1.0, random_state=seed)
    d["r"] = d.groupby(["user_id", "label"]).cumcount()
    n_pos = d[d["label"] == 1].groupby("user_id").size()
    pos_keep = np.minimum(n_pos, max(1, max_candidates // 2))
    d["cap"] = np.where(d["label"] == 1, d["user_id"].map(pos_keep), max_candidates - d["user_id"].map(pos_keep))
    out = d[d["r"] < d["cap"]]
    return out[EVAL_COLUMNS].sort_values(["user_id", "as_of", "item_id"], kind="stable").reset_index(drop=True)


_P, _I = "\x00SEREN_PROFILE\x00", "\x00SEREN_ITEM\x00"


def render_prompts(
    tokenizer: Any, profile_texts: list[str], item_texts: list[str], fields: list[str] | None = None
) -> list[str]:
    """`prompts.build_prompt` for many rows at once.

    The chat template is rendered once around two sentinels and filled by string concatenation;
    checked against the real `build_prompt` on a sample of rows, with a per-row fallback when the
    template transforms its content (so the output is always exactly `build_prompt`'s).
    """
    n = len(profile_texts)
    fields = list(fields) if fields is not None else [None] * n  # relation fields (JSON) per row
    frame = prompts.build_prompt(tokenizer, _P, _I)
    if frame.count(_P) == 1 and frame.count(_I) == 1 and frame.index(_P) < frame.index(_I):
        head, rest = frame.split(_P)
        mid, tail = rest.split(_I)
        out = [
            head + p.strip() + mid + candidate_block(p, t, f or None) + tail
            for p, t, f in zip(profile_texts, item_texts, fields, strict=True)
        ]
        probe = sorted({0, n - 1, *np.random.default_rng(0).integers(0, max(n, 1), size=min(n, 16)).tolist()})
        if n == 0 or all(
            out[i] == prompts.build_prompt(tokenizer, profile_texts[i], item_texts[i], fields[i] or None) for i in probe
        ):
            return out
    return [
        prompts.build_prompt(tokenizer, p, t, f or None)
        for p, t, f in zip(profile_texts, item_texts, fields, strict=True)
    ]


def build_training_data(
    labels: pd.DataFrame,
    profiles: pd.DataFrame,
    items: pd.DataFrame,
    tokenizer: Any,
    test_frac: float = 0.25,
    seed: int = 0,
    max_candidates: int = 20,
) -> TrainingData:
    """SFT examples + preference pairs (balanced train split) + ranking candidates, split by user.

    Train classes are balanced by down-sampling; the test split keeps the natural class ratio so
    AUC/calibration are measured on the distribution the model will see.
    """
    snap = "as_of" in labels.columns and "as_of" in profiles.columns
    on = ["user_id", "as_of"] if snap else ["user_id"]
    # the relation line comes from the profile's structured fields (seren.llm.relation), not its prose
    fcol = ["relation_fields"] if "relation_fields" in profiles.columns else []
    prof = profiles[[*on, "profile_text", *fcol]].copy()
    labels = labels.copy()
    if snap:  # parquet round trips may change the datetime unit; compare as UTC nanoseconds
        prof["as_of"] = _utc_ns(prof["as_of"])
        labels["as_of"] = _utc_ns(labels["as_of"])
    else:
        labels["as_of"] = pd.NaT
    prof = prof.drop_duplicates(on)
    texts = pd.DataFrame({"item_id": items["item_id"].astype(str).to_numpy(), "item_text": item_text(items).to_numpy()})
    df = labels.merge(prof, on=on, how="inner").merge(texts, on="item_id", how="inner")
    n_unjoined = len(labels) - len(df)
    if df.empty:
        raise DataError("no label matches a profile and an item", "build labels and profiles from the same dataset")
    df = df.drop_duplicates(["user_id", "item_id", "as_of"], keep="first")
    if "relation_fields" not in df.columns:
        df["relation_fields"] = ""
    df["relation_fields"] = df["relation_fields"].fillna("").astype(str)
    df["prompt"] = render_prompts(
        tokenizer, df["profile_text"].tolist(), df["item_text"].tolist(), df["relation_fields"].tolist()
    )
    # Identical prompts (same profile text + item) must carry one answer: keep the most confident,
    # drop the prompt entirely when its labels contradict each other.
    contradictory = df.groupby("prompt")["label"].transform("nunique") > 1
    n_contradictory = int(contradictory.sum())
    df = df[~contradictory].sort_values("confidence", ascending=False, kind="stable")
    n_before = len(df)
    df = df.drop_duplicates("prompt", keep="first").sort_values(["user_id", "as_of", "item_id"], kind="stable")
    n_duplicates = n_before - len(df)
    df["label"] = df["label"].astype(int)
    rat = df["rationale"].where(df["rationale"].notna(), None) if "rationale" in df.columns else [None] * len(df)
    df["completion"] = [prompts.completion(bool(lab), r) for lab, r in zip(df["label"], rat, strict=True)]
    df["chosen"] = df["completion"]
    df["rejected"] = [prompts.completion(not bool(lab)) for lab in df["label"]]

    train_users, test_users = _split_users(df["user_id"].unique(), test_frac, seed)
    assert not train_users & test_users, "user split must be disjoint"
    train = _balance(df[df["user_id"].isin(train_users)], seed)
    test = df[df["user_id"].isin(test_users)].reset_index(drop=True)
    assert set(train["user_id"]).isdisjoint(set(test["user_id"])), "a user is in both train and test"
    cands = _candidates(test, max_candidates, seed)

    # Prompt length statistics on a seeded sample: tokenizing every prompt costs more than the rest.
    sample = df["prompt"].sample(n=min(len(df), 2000), random_state=seed)
    tok = count_tokens(tokenizer, sample.tolist())
    metrics = {
        "n_examples": int(len(df)),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "n_train_users": len(set(train["user_id"])),
        "n_test_users": len(test_users),
        "train_positive_rate": round(float(train["label"].mean()), 4),
        "test_positive_rate": round(float(test["label"].mean()), 4) if len(test) else 0.0,
        "n_eval_users": int(cands["user_id"].nunique()),
        "n_eval_candidates": int(len(cands)),
        "n_duplicates_dropped": n_duplicates,
        "n_contradictory_dropped": n_contradictory,
        "n_unjoined_labels": int(n_unjoined),
        "mean_prompt_tokens": round(float(tok.mean()), 1),
        "max_prompt_tokens": int(tok.max()),
        "n_with_rationale_train": int(train["completion"].str.len().gt(3).sum()),
        "test_frac": test_frac,
        "seed": seed,
    }
    if "source" in train.columns:
        for s in PRECEDENCE:
            metrics[f"train_source_{s}"] = int((train["source"] == s).sum())
    return TrainingData(
        sft_train=train[SFT_COLUMNS],
        sft_test=test[SFT_COLUMNS],
        pref_train=train[PREF_COLUMNS],
        pref_test=test[PREF_COLUMNS],
        eval_candidates=cands,
        metrics=metrics,
    )
