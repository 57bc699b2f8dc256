"""Sequences of positive engagements: the config, the leak-free split, histories and the
novel-cluster item sets the recommender is evaluated and restricted on.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from seren.data.dataset import Dataset
from seren.data.schema import is_positive
from seren.data.split import chronological_split
from seren.errors import ConfigError, DataError

log = logging.getLogger(__name__)


FORMAT_VERSION = 1
MODEL_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
LOSSES = ("sampled_softmax", "bce")

Recs = list[tuple[str, float]]


# --------------------------------------------------------------------------- config + data


@dataclass(frozen=True)
class SeqRecConfig:
    """Hyperparameters; everything except `epochs`/`patience` is part of the resume fingerprint."""

    max_len: int = 50
    dim: int = 64
    n_blocks: int = 2
    n_heads: int = 2
    dropout: float = 0.2
    loss: str = "sampled_softmax"
    n_negatives: int = 256
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.0
    val_frac: float = 0.1
    test_frac: float = 0.1
    k: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.max_len >= 2, "max_len must be >= 2"),
            (self.dim >= 2 and self.n_heads >= 1 and self.dim % self.n_heads == 0, "dim must be a multiple of n_heads"),
            (self.n_blocks >= 1, "n_blocks must be >= 1"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}"),
            (self.n_negatives >= 1, "n_negatives must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.k >= 1, "k must be >= 1"),
            (self.seed >= 0, "seed must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"invalid sequence recommender setting: {msg}", "pass values in the allowed range")


def _interactions(data: Dataset | pd.DataFrame) -> pd.DataFrame:
    df = data.interactions if isinstance(data, Dataset) else data
    if not isinstance(df, pd.DataFrame):
        raise DataError(
            f"expected a Dataset or an interactions DataFrame, got {type(data).__name__}",
            "pass seren.data.load_dataset(DIR) or its .interactions",
        )
    missing = [c for c in ("user_id", "item_id", "event", "rating", "timestamp") if c not in df.columns]
    if missing:
        raise DataError(f"interactions: missing column '{missing[0]}'", "pass canonical interactions (seren.data)")
    return df


def positive_events(data: Dataset | pd.DataFrame) -> pd.DataFrame:
    """Positively engaged events (user_id, item_id, timestamp) in per-user time order."""
    df = _interactions(data)
    pos = df.loc[is_positive(df), ["user_id", "item_id", "timestamp"]].copy()
    pos["user_id"] = pos["user_id"].astype(str)
    pos["item_id"] = pos["item_id"].astype(str)
    pos["timestamp"] = pd.to_datetime(pos["timestamp"], utc=True)
    return pos.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)


def _sequences(events: pd.DataFrame) -> dict[str, list[str]]:
    if events.empty:
        return {}
    ordered = events.sort_values(["user_id", "timestamp"], kind="stable")
    return {u: list(g) for u, g in ordered.groupby("user_id", sort=True)["item_id"]}


def user_histories(
    data: Dataset | pd.DataFrame, users: Collection[str] | None = None, as_of: Any = None
) -> dict[str, list[str]]:
    """user -> positively engaged item ids, oldest first (the `history_item_ids` to recommend from).

    `as_of` (timestamp) keeps only events strictly before it."""
    pos = positive_events(data)
    if as_of is not None:
        cut = pd.Timestamp(as_of)
        pos = pos[pos["timestamp"] < (cut.tz_localize("UTC") if cut.tz is None else cut.tz_convert("UTC"))]
    if users is not None:
        pos = pos[pos["user_id"].isin({str(u) for u in users})]
    return _sequences(pos)


@dataclass
class SeqSplit:
    """Per-user positive sequences of the leak-free chronological split."""

    train: dict[str, list[str]]
    val: dict[str, list[str]]
    test: dict[str, list[str]]

    def history(self, user: str, upto: str) -> list[str]:
        """The user's items before the `upto` part ("val" -> train, "test" -> train + val)."""
        h = list(self.train.get(user, []))
        if upto == "test":
            h += self.val.get(user, [])
        return h


def split_sequences(data: Dataset | pd.DataFrame, val_frac: float = 0.1, test_frac: float = 0.1) -> SeqSplit:
    """chronological_split of the positive events, per user (every user keeps >= 1 train event)."""
    tr, va, te = chronological_split(positive_events(data), val_frac=val_frac, test_frac=test_frac)
    return SeqSplit(_sequences(tr), _sequences(va), _sequences(te))


def next_new_item(history: Sequence[str], future: Sequence[str]) -> str | None:
    """First item of `future` not in `history` (the target an exclude-seen recommender can hit)."""
    seen = set(history)
    for item in future:
        if item not in seen:
            return item
    return None


def novel_cluster_items(
    histories: Mapping[str, Sequence[str]], item_to_cluster: Mapping[str, str]
) -> dict[str, set[str]]:
    """user -> items of every cluster the user has not engaged with (the widest novel restriction)."""
    by_cluster: dict[str, set[str]] = {}
    for item, c in item_to_cluster.items():
        by_cluster.setdefault(c, set()).add(item)
    out = {}
    for user, hist in histories.items():
        known = {item_to_cluster[i] for i in hist if i in item_to_cluster}
        out[user] = set().union(*(items for c, items in by_cluster.items() if c not in known))
    return out


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with `n` intra-op threads, then restore. These matmuls are tiny, so one thread is the
    default: on 2 shared cores two threads measured ~13x slower per training step (they wait on
    each other whenever a core is busy); None keeps torch's setting."""
    prev = torch.get_num_threads()
    if n is not None and n != prev:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != prev:
            torch.set_num_threads(prev)
