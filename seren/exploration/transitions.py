"""Cluster transitions: what users newly explored after their last two interests.

From each user's positively engaged items (time order) mapped to interest clusters with
consecutive repeats dropped, every step i >= 2 gives a triple (c1, c2) -> c_next with
c1 = s[i-2], c2 = s[i-1], c_next = s[i], kept only when c_next is *novel* for the user (not
among s[0..i-1]). Those triples are the novelty LLM's fine-tuning data (prompt = the two cluster
descriptions, target = the novel cluster's description) and its held-out test set.

Split by time (a global cutoff on the triple's time), then counts and the rarity threshold are
applied to the training part only: the test part keeps every triple, so held-out recall is not
flattered by filtering.

``window`` widens the *training* targets: with window=w a pair (s[i-2], s[i-1]) is paired with
every cluster among s[i..i+w-1] that is new to the user, not only the immediate s[i]. A single
next step is a noisy sample of where a user goes; the novel clusters of the next few steps are
the same user's exploration from the same pair, so they multiply the fine-tuning data (measured
on the synthetic data: see benchmarks/novelty_quality.py). Held-out triples and the baselines'
history stay immediate-next only, so recall still measures the true next novel cluster.

Defined behaviour for thin data: users with fewer than two distinct clusters are skipped and
counted (``metrics["users_skipped_lt2_clusters"]``); an empty training set after filtering is a
DataError that names the threshold to lower.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren.data.schema import is_positive
from seren.errors import ConfigError, DataError
from seren.io import atomic_dir

PROMPT_TEMPLATE = "Interests, in order: {d1}; then {d2}.\nA new interest to explore next:"


def transition_prompt(d1: str, d2: str) -> str:
    """The novelty LLM's input: the user's last two clusters, by description."""
    return PROMPT_TEMPLATE.format(d1=d1, d2=d2)


def transition_completion(d_next: str) -> str:
    """The target text (a leading space so it tokenises the same inside and after the prompt)."""
    return " " + d_next


def cluster_sequences(interactions: pd.DataFrame, item_to_cluster: dict[str, str]) -> pd.DataFrame:
    """Positive engagements as clusters, time-ordered per user, consecutive repeats dropped.

    Returns user_id, cluster_id, timestamp (of the first engagement of each run)."""
    pos = interactions.loc[is_positive(interactions), ["user_id", "item_id", "timestamp"]].copy()
    pos["cluster_id"] = pos["item_id"].astype(str).map(item_to_cluster)
    pos = pos.dropna(subset=["cluster_id"]).sort_values(["user_id", "timestamp"], kind="stable")
    same_user = pos["user_id"].eq(pos["user_id"].shift())
    repeat = same_user & pos["cluster_id"].eq(pos["cluster_id"].shift())
    return pos.loc[~repeat, ["user_id", "cluster_id", "timestamp"]].reset_index(drop=True)


def novel_triples(seqs: pd.DataFrame, window: int = 1) -> tuple[pd.DataFrame, dict[str, int]]:
    """(user_id, c1, c2, c_next, timestamp, offset) for every novel cluster within `window` steps
    after each pair (offset 0 = the immediate next cluster; timestamp = the target's), plus user counts."""
    if window < 1:
        raise ConfigError(f"window must be >= 1 (got {window})", "pass window=1 for the immediate next cluster only")
    rows: list[tuple[str, str, str, str, Any, int]] = []
    skipped = no_novel = 0
    for user, g in seqs.groupby("user_id", sort=True):
        cs = g["cluster_id"].tolist()
        ts = g["timestamp"].tolist()
        if len(set(cs)) < 2:
            skipped += 1
            continue
        seen = set(cs[:2])
        immediate = 0
        for i in range(2, len(cs)):
            targets: set[str] = set()
            for j in range(i, min(len(cs), i + window)):
                if cs[j] not in seen and cs[j] not in targets:
                    rows.append((str(user), cs[i - 2], cs[i - 1], cs[j], ts[j], j - i))
                    targets.add(cs[j])
            if cs[i] not in seen:
                seen.add(cs[i])
                immediate += 1
        no_novel += immediate == 0
    df = pd.DataFrame(rows, columns=["user_id", "c1", "c2", "c_next", "timestamp", "offset"])
    return df, {
        "users_skipped_lt2_clusters": skipped,
        "users_without_novel_transition": no_novel,
        "users_used": int(seqs["user_id"].nunique()) - skipped,
    }


@dataclass
class Transitions:
    """train: unique (c1, c2, c_next) with count >= min_count in the training period (targets within
    the build's `window`), + prompt/completion
    test: every held-out novel triple (user_id, c1, c2, c_next, timestamp) + prompt/completion
    history: train-period immediate-next triples before the rarity filter (for the baselines)
    sequences: every user's deduplicated cluster sequence (user_id, cluster_id, timestamp); consumers
    that fit on it (baselines, alignment) cut it at `cutoff` themselves
    """

    train: pd.DataFrame
    test: pd.DataFrame
    history: pd.DataFrame
    cutoff: pd.Timestamp
    sequences: pd.DataFrame | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def sft_frame(self, max_repeat: int = 4) -> pd.DataFrame:
        """prompt/completion rows, each triple repeated min(count, max_repeat) times so frequent
        transitions weigh more without letting one dominate."""
        reps = np.minimum(self.train["count"].to_numpy(), max(1, max_repeat))
        return self.train.loc[
            self.train.index.repeat(reps), ["c1", "c2", "c_next", "prompt", "completion"]
        ].reset_index(drop=True)

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        out_dir = Path(out_dir)
        with atomic_dir(out_dir) as tmp:
            self.train.to_parquet(tmp / "train.parquet", index=False)
            self.test.to_parquet(tmp / "test.parquet", index=False)
            self.history.to_parquet(tmp / "history.parquet", index=False)
            if self.sequences is not None:
                self.sequences.to_parquet(tmp / "sequences.parquet", index=False)
            meta = {"cutoff": self.cutoff.isoformat(), "metrics": self.metrics}
            (tmp / "transitions.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        return out_dir

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Transitions:
        path = Path(path)
        if not (path / "train.parquet").exists() or not (path / "transitions.json").exists():
            raise DataError(
                f"{path} is not a transitions directory",
                "build it with seren.exploration.transitions.build_transitions",
            )
        meta = json.loads((path / "transitions.json").read_text())
        seq_f = path / "sequences.parquet"
        return cls(
            train=pd.read_parquet(path / "train.parquet"),
            test=pd.read_parquet(path / "test.parquet"),
            history=pd.read_parquet(path / "history.parquet"),
            cutoff=pd.Timestamp(meta["cutoff"]),
            sequences=pd.read_parquet(seq_f) if seq_f.exists() else None,
            metrics=meta.get("metrics", {}),
        )


def _with_prompts(df: pd.DataFrame, desc: dict[str, str]) -> pd.DataFrame:
    df = df.copy()
    df["prompt"] = [transition_prompt(desc[a], desc[b]) for a, b in zip(df["c1"], df["c2"], strict=True)]
    df["completion"] = [transition_completion(desc[c]) for c in df["c_next"]]
    return df


def build_transitions(
    interactions: pd.DataFrame,
    item_to_cluster: dict[str, str],
    descriptions: dict[str, str],
    min_count: int = 2,
    test_frac: float = 0.2,
    cutoff: pd.Timestamp | str | None = None,
    window: int = 1,
) -> Transitions:
    """Novel-cluster triples split by time; rare training triples (count < min_count) dropped.

    `cutoff` (a time) overrides `test_frac` (the share of immediate triples, by time, held out);
    `window` > 1 adds the later novel clusters of each pair to the training targets (module doc)."""
    if min_count < 1:
        raise ConfigError(f"min_count must be >= 1 (got {min_count})", "pass min_count=1 to keep every transition")
    if cutoff is None and not 0.0 < test_frac < 1.0:
        raise ConfigError(f"test_frac must be in (0, 1) (got {test_frac})", "pass e.g. test_frac=0.2")
    seqs = cluster_sequences(interactions, item_to_cluster)
    if seqs.empty:
        raise DataError(
            "no positive engagement maps to an interest cluster",
            "check that the interactions' items are the clustered items",
        )
    windowed, user_counts = novel_triples(seqs, window=window)
    triples = windowed[windowed["offset"] == 0].drop(columns="offset").reset_index(drop=True)
    if triples.empty:
        raise DataError(
            f"no novel cluster transitions: {user_counts['users_skipped_lt2_clusters']} user(s) have fewer than two clusters and the rest never moved to a new one",
            "use longer histories or coarser clusters (lower n_sub)",
        )
    if cutoff is None:
        cut = triples["timestamp"].quantile(1.0 - test_frac)
    else:
        cut = pd.Timestamp(cutoff)
        cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut
    history = triples[triples["timestamp"] < cut].reset_index(drop=True)
    test = triples[triples["timestamp"] >= cut].reset_index(drop=True)
    # the target's time decides the side, so no training target lies after the cutoff
    targets = windowed[windowed["timestamp"] < cut]
    counts = targets.groupby(["c1", "c2", "c_next"], as_index=False).size().rename(columns={"size": "count"})
    train = (
        counts[counts["count"] >= min_count]
        .sort_values(["count", "c1", "c2", "c_next"], ascending=[False, True, True, True])
        .reset_index(drop=True)
    )
    if train.empty:
        raise DataError(
            f"no training transition occurs at least min_count={min_count} times ({len(counts)} distinct, {len(targets)} total before the threshold)",
            "lower min_count, hold out less (test_frac) or use more interactions",
        )
    if test.empty:
        raise DataError("no held-out transitions after the time cutoff", "raise test_frac or pass an earlier cutoff")
    metrics = {
        **user_counts,
        "min_count": min_count,
        "window": window,
        "train_targets_windowed": int(len(targets)),
        "triples_total": int(len(triples)),
        "triples_train_period": int(len(history)),
        "distinct_train_period": int(len(counts)),
        "distinct_train_kept": int(len(train)),
        "train_examples_kept": int(train["count"].sum()),
        "dropped_rare": int(len(counts) - len(train)),
        "test_triples": int(len(test)),
        "test_users": int(test["user_id"].nunique()),
        "train_pairs": int(train[["c1", "c2"]].drop_duplicates().shape[0]),
        "cutoff": cut.isoformat(),
    }
    return Transitions(
        train=_with_prompts(train, descriptions),
        test=_with_prompts(test, descriptions),
        history=history,
        cutoff=cut,
        sequences=seqs,
        metrics=metrics,
    )
