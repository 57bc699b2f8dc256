"""SASRec-style sequence recommender, restricted to novel interest clusters at query time.

The exploration system (RecSys'24) picks a *novel* cluster for a user from the pair table and
then lets a transformer sequence recommender choose items inside it; nearline caches its top items.

Model: item embeddings (shared with the output layer) + learned positions counted from the most
recent item, pre-LN causal self-attention blocks, trained on each user's positively engaged items
(`seren.data.is_positive`) in time order to predict the next item at every position. Loss: sampled
softmax over `n_negatives` uniform negatives shared by the batch (exact full softmax when that
covers the catalogue) or BCE with one uniform negative per position. CPU fp32 by default.

Split (leak-free): `seren.data.split.chronological_split` of the *positive* events per user.
Training sees only the train part; early stopping watches HR@k on validation (history = train,
a hit when any validation item the user has not engaged with before is in the top k); `evaluate_seqrec`
reports the test part (history = train + validation). Recommendations exclude seen items by
default, so the evaluated target is the next *new* item (repeat engagements are >50% of the
synthetic positives and no exclude-seen recommender can hit them).

Query-time behaviour (documented fallbacks):
* history items outside the vocabulary (not in the training positives) are ignored and counted
  in `SeqRecModel.counters["unknown_history_items"]`;
* a history that is empty after that gets the training popularity ranking (scores = popularity
  share, not logits), counted in `counters["popularity_fallbacks"]`;
* `allowed_item_ids` masks the catalogue (e.g. items of the user's novel clusters); allowed ids
  outside the vocabulary cannot be scored and are skipped; an empty allowed set returns [].

Files in the model directory (each written atomically): `model.pt` (weights + config + item-id
vocabulary + popularity in one file, so they can never disagree), `checkpoint.pt` (resumable
training state: last weights, optimizer, RNG states, best weights, early-stopping counters),
`config.json` and `metrics.json` (readable copies). `train_seqrec` on a directory whose checkpoint
has the same settings and data resumes from it (a finished run returns at once).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from seren.data.dataset import Dataset
from seren.data.schema import is_positive
from seren.data.split import chronological_split
from seren.errors import ConfigError, DataError
from seren.io import atomic_path, write_json
from seren.metrics import hit_at_k, ndcg_at_k

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


# --------------------------------------------------------------------------- network


class _Block(nn.Module):
    """Pre-LN causal self-attention + feed-forward (SASRec block)."""

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        # no dropout on attention weights: on CPU it costs more than the rest of the block and adds little
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.ff(self.ln2(x)))


class SASRec(nn.Module):
    """Item index 0 is padding; sequences are left-padded so the last column is the newest item."""

    def __init__(self, n_items: int, max_len: int, dim: int, n_blocks: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.max_len, self.dim = max_len, dim
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(dim, n_heads, dropout) for _ in range(n_blocks))
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.item_emb.weight, std=dim**-0.5)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """[B, T] item indices -> [B, T, D] states; position t predicts the item after seq[:, t]."""
        t = seq.shape[1]
        pos = torch.arange(self.max_len - t, self.max_len, device=seq.device)  # counted from the newest item
        x = self.drop(self.item_emb(seq) * math.sqrt(self.dim) + self.pos_emb(pos))
        real = seq != 0
        causal = torch.ones(t, t, dtype=torch.bool, device=seq.device).tril()
        eye = torch.eye(t, dtype=torch.bool, device=seq.device)
        # a padding query may see itself only, so no attention row is empty (no NaN); real queries never see padding
        allowed = (causal & (real[:, None, :] | eye))[:, None]
        for block in self.blocks:
            x = block(x, allowed)
        return self.norm(x)

    def item_weights(self) -> torch.Tensor:
        return self.item_emb.weight[1:]

    def last_scores(self, seq: torch.Tensor) -> torch.Tensor:
        """[B, n_items] next-item logits after the newest item of each (left-padded) row."""
        return self.encode(seq)[:, -1] @ self.item_weights().T


def _left_pad(rows: Sequence[Sequence[int]], width: int) -> torch.Tensor:
    out = torch.zeros(len(rows), width, dtype=torch.long)
    for r, seq in enumerate(rows):
        seq = list(seq)[-width:]
        if seq:
            out[r, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
    return out


# --------------------------------------------------------------------------- model


class SeqRecModel:
    """A trained recommender: network + item-id vocabulary + training popularity (fallback)."""

    def __init__(
        self,
        net: SASRec,
        item_ids: Sequence[str],
        popularity: Sequence[float],
        config: SeqRecConfig,
        info: dict[str, Any] | None = None,
        device: str = "cpu",
        threads: int | None = 1,
    ) -> None:
        self.net = net.eval()
        self.item_ids = list(item_ids)
        self.index = {item: i for i, item in enumerate(self.item_ids)}  # 0-based; network index = i + 1
        pop = torch.tensor(list(popularity), dtype=torch.float32)
        self.popularity = pop / pop.sum().clamp(min=1.0)
        self.config = config
        self.info = dict(info or {})
        self.device = device
        self.threads = threads  # torch intra-op threads while scoring (see torch_threads)
        self.counters = {"unknown_history_items": 0, "popularity_fallbacks": 0}

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    # ---- persistence
    def state(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "config": dataclasses.asdict(self.config),
            "item_ids": self.item_ids,
            "popularity": self.popularity.tolist(),
            "weights": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "info": json.loads(json.dumps(self.info, default=str)),
        }

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        out_dir = Path(out_dir)
        with atomic_path(out_dir / MODEL_FILE) as tmp:
            torch.save(self.state(), tmp)
        write_json(
            out_dir / CONFIG_FILE, {"config": dataclasses.asdict(self.config), "n_items": self.n_items, **self.info}
        )
        return out_dir

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str = "cpu", threads: int | None = 1) -> SeqRecModel:
        """Load `<dir>/model.pt` (or the file itself)."""
        path = Path(path)
        f = path / MODEL_FILE if path.is_dir() else path
        if not f.is_file():
            raise DataError(
                f"{path} has no sequence recommender ({MODEL_FILE})",
                "train one with `train_seqrec` / the seqrec_train step",
            )
        try:
            st = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for truncated/corrupt files
            raise DataError(
                f"{f}: cannot read the model ({type(exc).__name__}: {exc})", "retrain the sequence recommender"
            ) from None
        if st.get("format") != FORMAT_VERSION:
            raise DataError(
                f"{f}: model format {st.get('format')} is not {FORMAT_VERSION}", "retrain the sequence recommender"
            )
        return cls._from_state(st, device, threads)

    @classmethod
    def _from_state(cls, st: dict[str, Any], device: str = "cpu", threads: int | None = 1) -> SeqRecModel:
        cfg = SeqRecConfig(**st["config"])
        net = _build_net(len(st["item_ids"]), cfg)
        net.load_state_dict(st["weights"])
        return cls(net.to(device), st["item_ids"], st["popularity"], cfg, st.get("info"), device, threads)

    # ---- inference
    def _encode_history(self, history: Sequence[str]) -> list[int]:
        idx = [self.index[i] + 1 for i in map(str, history) if i in self.index]
        self.counters["unknown_history_items"] += len(history) - len(idx)
        return idx

    def _mask(self, ids: Collection[str] | None) -> torch.Tensor | None:
        if ids is None:
            return None
        m = torch.zeros(self.n_items, dtype=torch.bool)
        known = [self.index[i] for i in map(str, ids) if i in self.index]
        if known:
            m[known] = True
        return m

    @torch.inference_mode()
    def score_histories(self, histories: Sequence[Sequence[str]], batch_size: int = 256) -> torch.Tensor:
        """[len(histories), n_items] scores before masking: logits, or popularity share for empty histories."""
        encoded = [self._encode_history(h) for h in histories]
        out = torch.empty(len(encoded), self.n_items)
        rows = [r for r, e in enumerate(encoded) if e]
        for r, e in enumerate(encoded):
            if not e:
                out[r] = self.popularity
                self.counters["popularity_fallbacks"] += 1
        self.net.eval()
        with torch_threads(self.threads):
            for s in range(0, len(rows), batch_size):
                chunk = rows[s : s + batch_size]
                width = min(self.config.max_len, max(len(encoded[r]) for r in chunk))
                seq = _left_pad([encoded[r] for r in chunk], width).to(self.device)
                out[chunk] = self.net.last_scores(seq).float().cpu()
        return out

    def recommend_batch(
        self,
        histories: Sequence[Sequence[str]],
        k: int = 10,
        allowed_item_ids: Sequence[Collection[str] | None] | Collection[str] | None = None,
        exclude_seen: bool = True,
        batch_size: int = 256,
    ) -> list[Recs]:
        """Top-k (item_id, score) per history, best first.

        `allowed_item_ids`: None (whole catalogue), one collection of item ids shared by all rows, or
        a list aligned with `histories` holding a collection (or None) per row."""
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}", "ask for at least one recommendation")
        per_row = _per_row_allowed(allowed_item_ids, len(histories))
        scores = self.score_histories(histories, batch_size)
        shared = self._mask(per_row) if not isinstance(per_row, list) else None
        results: list[Recs] = []
        for r, hist in enumerate(histories):
            s = scores[r]
            keep = shared if shared is not None else self._mask(per_row[r]) if isinstance(per_row, list) else None
            if keep is not None:
                s = s.masked_fill(~keep, -math.inf)
            if exclude_seen:
                seen = self._mask(hist)
                if seen is not None and seen.any():
                    s = s.masked_fill(seen, -math.inf)
            n = min(k, int(torch.isfinite(s).sum()))
            if n == 0:
                results.append([])
                continue
            # stable ranking: ties (e.g. equal popularity) broken by vocabulary order
            order = np.argsort(-s.numpy(), kind="stable")[:n]
            results.append([(self.item_ids[i], float(s[i])) for i in order])
        return results

    def recommend(
        self,
        history_item_ids: Sequence[str],
        k: int = 10,
        allowed_item_ids: Collection[str] | None = None,
        exclude_seen: bool = True,
    ) -> Recs:
        """Top-k (item_id, score) for one user's history (oldest first)."""
        allowed = None if allowed_item_ids is None else [allowed_item_ids]
        return self.recommend_batch([list(history_item_ids)], k, allowed, exclude_seen)[0]


def _per_row_allowed(allowed: Any, n: int) -> Any:
    if allowed is None or isinstance(allowed, set | frozenset | dict | pd.Index | np.ndarray):
        return allowed
    if isinstance(allowed, str):
        raise ConfigError("allowed_item_ids is a single string", "pass a collection of item ids (or one per history)")
    allowed = list(allowed)
    if all(isinstance(a, str) for a in allowed):
        return set(allowed)
    if len(allowed) != n or not all(
        a is None or (isinstance(a, Collection) and not isinstance(a, str)) for a in allowed
    ):
        raise ConfigError(
            f"allowed_item_ids has {len(allowed)} entries for {n} histories",
            "pass one collection of item ids for all, or exactly one collection (or None) per history",
        )
    return allowed


def _build_net(n_items: int, cfg: SeqRecConfig) -> SASRec:
    return SASRec(n_items, cfg.max_len, cfg.dim, cfg.n_blocks, cfg.n_heads, cfg.dropout)


# --------------------------------------------------------------------------- training


def _windows(seqs: Sequence[list[int]], max_len: int) -> list[list[int]]:
    """Cut each sequence into windows of max_len + 1 from the newest end, so long histories are fully used."""
    out = []
    for s in seqs:
        for end in range(len(s), 1, -max_len):
            w = s[max(0, end - max_len - 1) : end]
            if len(w) >= 2:
                out.append(w)
    return out


def _batches(lengths: torch.Tensor, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Shuffled batches of windows of similar length (less padding to compute), in shuffled order."""
    perm = torch.randperm(len(lengths), generator=gen)
    by_len = perm[torch.argsort(lengths[perm], stable=True)]
    batches = list(torch.split(by_len, batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]


def _loss(net: SASRec, batch: torch.Tensor, cfg: SeqRecConfig, gen: torch.Generator) -> torch.Tensor:
    inp, tgt = batch[:, :-1], batch[:, 1:]
    h = net.encode(inp)
    valid = (tgt != 0) & (inp != 0)
    h, tgt = h[valid], tgt[valid]
    w = net.item_emb.weight
    pos = (h * w[tgt]).sum(-1)
    n_items, dev = w.shape[0] - 1, w.device
    if cfg.loss == "bce":  # negatives drawn on the CPU generator (same stream on any device), then moved
        neg_i = torch.randint(1, n_items + 1, tgt.shape, generator=gen).to(dev)
        neg = (h * w[neg_i]).sum(-1)
        keep = neg_i != tgt
        return F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + F.binary_cross_entropy_with_logits(
            neg[keep], torch.zeros_like(neg[keep])
        )
    if cfg.n_negatives >= n_items:  # the sample would cover the catalogue: exact softmax
        return F.cross_entropy(h @ w[1:].T, tgt - 1)
    neg_i = torch.randint(1, n_items + 1, (cfg.n_negatives,), generator=gen).to(dev)
    neg = (h @ w[neg_i].T).masked_fill(neg_i[None, :] == tgt[:, None], -math.inf)
    logits = torch.cat([pos[:, None], neg], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(tgt), dtype=torch.long, device=dev))


def _fingerprint(cfg: SeqRecConfig, item_ids: Sequence[str], train: Mapping[str, list[str]]) -> str:
    h = hashlib.sha256()
    fixed = {k: v for k, v in dataclasses.asdict(cfg).items()}
    h.update(json.dumps(fixed, sort_keys=True).encode())
    h.update("\x1f".join(item_ids).encode())
    for u in sorted(train):
        h.update(f"{u}\x1e{chr(31).join(train[u])}\x1d".encode())
    return h.hexdigest()[:16]


def _val_hr(model: SeqRecModel, split: SeqSplit, k: int, users: Sequence[str]) -> float:
    """Validation HR@k: a hit when any of the user's new validation items is in the top k.

    Any (not only the next) item: on ~600 MovieLens users the next-item hit rate moved by as much
    as its own size between epochs and stopped training at epoch 2; several targets per user are
    a steadier early-stopping signal from the same leak-free split."""
    rows = []
    for u in users:
        h = split.history(u, "val")
        targets = set(split.val[u]) - set(h)
        if targets:
            rows.append((h, targets))
    if not rows:
        return 0.0
    recs = model.recommend_batch([h for h, _ in rows], k=k)
    return float(np.mean([hit_at_k([i for i, _ in r], t, k) for r, (_, t) in zip(recs, rows, strict=True)]))


def _progress(show: bool, total: int) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("seqrec {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        disable=not show,
    )


def train_seqrec(
    ds_or_interactions: Dataset | pd.DataFrame,
    out_dir: str | os.PathLike[str],
    epochs: int = 200,
    max_len: int = 50,
    dim: int = 64,
    n_blocks: int = 2,
    n_heads: int = 2,
    dropout: float = 0.2,
    loss: str = "sampled_softmax",
    n_negatives: int = 256,
    batch_size: int = 128,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    patience: int = 5,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    k: int = 10,
    seed: int = 0,
    resume: bool = True,
    progress: bool | None = None,
    device: str = "cpu",
    max_val_users: int | None = 2000,
    threads: int | None = 1,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> SeqRecModel:
    """Train on the positive sequences with early stopping on validation HR@k; best model saved.

    Stops after `patience` epochs without a better validation HR@k (or at `epochs`); the returned
    and saved model is the best epoch's. `device="cuda"` runs on a GPU when one exists (fp32);
    `threads` = torch intra-op threads while training (see `torch_threads`)."""
    cfg = SeqRecConfig(
        max_len=max_len, dim=dim, n_blocks=n_blocks, n_heads=n_heads, dropout=dropout, loss=loss,
        n_negatives=n_negatives, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        val_frac=val_frac, test_frac=test_frac, k=k, seed=seed,
    )  # fmt: skip
    if epochs < 1 or patience < 1:
        raise ConfigError(f"epochs={epochs}, patience={patience}", "use epochs >= 1 and patience >= 1")
    if device != "cpu" and not (device.startswith("cuda") and torch.cuda.is_available()):
        raise ConfigError(f"device {device!r} is not available here", "use device='cpu' (no GPU on this machine)")
    with torch_threads(threads):
        return _train(
            ds_or_interactions,
            Path(out_dir),
            cfg,
            epochs,
            patience,
            resume,
            progress,
            device,
            max_val_users,
            threads,
            on_epoch,
        )


def _train(
    ds_or_interactions: Dataset | pd.DataFrame,
    out_dir: Path,
    cfg: SeqRecConfig,
    epochs: int,
    patience: int,
    resume: bool,
    progress: bool | None,
    device: str,
    max_val_users: int | None,
    threads: int | None,
    on_epoch: Callable[[dict[str, Any]], None] | None,
) -> SeqRecModel:
    seed, val_frac, test_frac = cfg.seed, cfg.val_frac, cfg.test_frac
    split = split_sequences(ds_or_interactions, val_frac, test_frac)
    counts = pd.Series([i for s in split.train.values() for i in s], dtype=object).value_counts()
    if len(counts) < 2:
        raise DataError(
            f"only {len(counts)} distinct positively engaged item(s) to train on",
            "use interactions with clicks/likes/purchases or ratings >= 4 on at least two items",
        )
    item_ids = sorted(counts.index.astype(str))
    popularity = counts.reindex(item_ids).to_numpy(dtype=float)
    index = {i: n + 1 for n, i in enumerate(item_ids)}
    windows = _windows([[index[i] for i in s] for s in split.train.values()], cfg.max_len)
    if not windows:
        raise DataError(
            "no user has two positively engaged items in the training part",
            "supply longer histories (a sequence recommender learns from consecutive engagements)",
        )
    data = _left_pad(windows, cfg.max_len + 1)
    lengths = torch.tensor([len(w) for w in windows])
    val_users = sorted(split.val)
    rng_val = np.random.default_rng(seed)
    if max_val_users is not None and len(val_users) > max_val_users:
        val_users = sorted(rng_val.choice(val_users, size=max_val_users, replace=False).tolist())

    fp = _fingerprint(cfg, item_ids, split.train)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = _build_net(len(item_ids), cfg).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    st: dict[str, Any] = {
        "epoch": 0,
        "best_hr": -1.0,
        "best_epoch": 0,
        "bad": 0,
        "history": [],
        "done": False,
        "train_s": 0.0,
    }
    best_weights = {k_: v.detach().clone() for k_, v in net.state_dict().items()}
    ck_f = out_dir / CHECKPOINT_FILE
    if resume and ck_f.is_file():
        try:
            ck = torch.load(ck_f, map_location="cpu", weights_only=True)
        except Exception as exc:  # a corrupt checkpoint: start over rather than crash
            log.warning("ignoring unreadable checkpoint %s (%s)", ck_f, exc)
            ck = None
        if ck is not None and ck.get("fingerprint") == fp:
            net.load_state_dict(ck["weights"])
            opt.load_state_dict(ck["optimizer"])
            best_weights = ck["best_weights"]
            st = json.loads(ck["state"])
            torch.set_rng_state(ck["torch_rng"])
            gen.set_state(ck["gen_rng"])
            if st["done"] and st["stop_reason"] == "epochs" and epochs > st["epoch"]:
                st["done"] = False  # more epochs were asked for: continue
            log.info("resuming sequence recommender from epoch %d", st["epoch"])
        elif ck is not None:
            log.warning("checkpoint %s is for other settings or data: training from scratch", ck_f)

    def model_of(weights: Mapping[str, torch.Tensor]) -> SeqRecModel:
        n = _build_net(len(item_ids), cfg)
        n.load_state_dict(weights)
        info = {
            "best_epoch": st["best_epoch"], "best_val_hr": st["best_hr"], "epochs_run": st["epoch"],
            "stop_reason": st.get("stop_reason"), "train_s": round(st["train_s"], 3), "n_windows": len(windows),
            "n_train_users": len(split.train), "n_val_users": len(val_users), "fingerprint": fp,
            "split": f"chronological_split(positives, val_frac={val_frac}, test_frac={test_frac})",
            "history": st["history"],
        }  # fmt: skip
        return SeqRecModel(n.to(device), item_ids, popularity, cfg, info, device, threads)

    show = progress if progress is not None else sys.stderr.isatty()
    n_rows = data.shape[0]
    with _progress(show, epochs) as bar:
        task = bar.add_task("epoch", total=epochs, completed=min(st["epoch"], epochs))
        while not st["done"]:
            if st["epoch"] >= epochs:
                st.update(done=True, stop_reason="epochs")
                break
            t0 = time.perf_counter()
            net.train()
            total = 0.0
            for rows in _batches(lengths, cfg.batch_size, gen):
                batch = data[rows]
                width = int(lengths[rows].max())  # trim shared left padding
                batch = batch[:, -width:].to(device)
                loss_v = _loss(net, batch, cfg, gen)
                opt.zero_grad()
                loss_v.backward()
                opt.step()
                total += float(loss_v.detach()) * len(batch)
            cur = model_of({k_: v.detach().cpu() for k_, v in net.state_dict().items()})
            hr = _val_hr(cur, split, cfg.k, val_users)
            st["epoch"] += 1
            st["train_s"] += time.perf_counter() - t0
            st["history"].append(
                {"epoch": st["epoch"], "loss": round(total / n_rows, 5), f"val_hr_at_{cfg.k}": round(hr, 5)}
            )
            if hr > st["best_hr"]:
                st.update(best_hr=hr, best_epoch=st["epoch"], bad=0)
                best_weights = {k_: v.detach().cpu().clone() for k_, v in net.state_dict().items()}
            else:
                st["bad"] += 1
            if st["bad"] >= patience:
                st.update(done=True, stop_reason="early_stopping")
            elif st["epoch"] >= epochs:
                st.update(done=True, stop_reason="epochs")
            _save_checkpoint(ck_f, fp, net, opt, best_weights, st, gen)
            bar.update(
                task, completed=st["epoch"], description=f"epoch loss={total / n_rows:.3f} val HR@{cfg.k}={hr:.3f}"
            )
            if on_epoch is not None:
                on_epoch(dict(st["history"][-1]))
    best = model_of(best_weights)
    best.save(out_dir)
    return best


def _save_checkpoint(
    path: Path,
    fp: str,
    net: nn.Module,
    opt: torch.optim.Optimizer,
    best: Mapping[str, torch.Tensor],
    st: dict[str, Any],
    gen: torch.Generator,
) -> None:
    ck = {
        "fingerprint": fp,
        "weights": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "optimizer": opt.state_dict(),
        "best_weights": dict(best),
        "state": json.dumps(st),
        "torch_rng": torch.get_rng_state(),
        "gen_rng": gen.get_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(ck, tmp)


# --------------------------------------------------------------------------- evaluation


def _popularity_ranking(train: Mapping[str, list[str]]) -> list[str]:
    counts = pd.Series([i for s in train.values() for i in s], dtype=object).value_counts()
    return sorted(counts.index, key=lambda i: (-counts[i], i))


def _pop_recs(ranking: Sequence[str], history: Collection[str], k: int, allowed: Collection[str] | None) -> list[str]:
    seen = set(history)
    out = []
    for i in ranking:
        if i not in seen and (allowed is None or i in allowed):
            out.append(i)
            if len(out) == k:
                break
    return out


def evaluate_seqrec(
    model: SeqRecModel,
    ds: Dataset | pd.DataFrame,
    k: int = 10,
    allowed_by_user: Mapping[str, Collection[str]] | None = None,
    item_to_cluster: Mapping[str, str] | None = None,
    max_users: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Held-out test metrics of the model vs a popularity baseline (same split as training).

    Unrestricted: HR@k / NDCG@k of the next new item (history = train + validation positives).
    Restricted (when `item_to_cluster` is given, or a Dataset whose item `category` stands in for
    clusters): each user's recommendations are masked to `allowed_by_user[user]` (default: every
    item of a cluster absent from the user's history); reported are the share of recommended items
    from clusters new to the user and the hit rate on the user's next held-out engagement in a new
    cluster (`novel_next_*`) and on any of them (`novel_any_hr`), with the same numbers for
    popularity under the same mask and for the unrestricted model."""
    split = split_sequences(ds, model.config.val_frac, model.config.test_frac)
    users = sorted(u for u in split.test if split.test[u])
    if max_users is not None and len(users) > max_users:
        users = sorted(np.random.default_rng(seed).choice(users, size=max_users, replace=False).tolist())
    hist = {u: split.history(u, "test") for u in users}
    ranking = _popularity_ranking(split.train)
    before = dict(model.counters)
    out: dict[str, float] = {"k": float(k), "n_items": float(model.n_items)}

    t0 = time.perf_counter()
    recs = {
        u: [i for i, _ in r] for u, r in zip(users, model.recommend_batch([hist[u] for u in users], k=k), strict=True)
    }
    out["recommend_ms_per_user"] = 1000 * (time.perf_counter() - t0) / max(1, len(users))
    targets = {u: next_new_item(hist[u], split.test[u]) for u in users}
    ev = [u for u in users if targets[u] is not None]
    out["n_users"] = float(len(ev))
    for name, get in (("", lambda u: recs[u]), ("pop_", lambda u: _pop_recs(ranking, hist[u], k, None))):
        out[f"{name}hr_at_{k}"] = float(np.mean([hit_at_k(get(u), {targets[u]}, k) for u in ev])) if ev else 0.0
        out[f"{name}ndcg_at_{k}"] = float(np.mean([ndcg_at_k(get(u), {targets[u]}, k) for u in ev])) if ev else 0.0
    out["target_in_vocab_share"] = float(np.mean([targets[u] in model.index for u in ev])) if ev else 0.0

    if item_to_cluster is None and isinstance(ds, Dataset) and "category" in ds.items.columns:
        item_to_cluster = dict(zip(ds.items["item_id"].astype(str), ds.items["category"].astype(str), strict=True))
    if item_to_cluster is not None:
        out.update(_restricted_metrics(model, split, users, hist, recs, ranking, k, allowed_by_user, item_to_cluster))
    out["unknown_history_items"] = float(model.counters["unknown_history_items"] - before["unknown_history_items"])
    out["popularity_fallbacks"] = float(model.counters["popularity_fallbacks"] - before["popularity_fallbacks"])
    return out


def _restricted_metrics(
    model: SeqRecModel,
    split: SeqSplit,
    users: Sequence[str],
    hist: Mapping[str, list[str]],
    recs: Mapping[str, list[str]],
    ranking: Sequence[str],
    k: int,
    allowed_by_user: Mapping[str, Collection[str]] | None,
    item_to_cluster: Mapping[str, str],
) -> dict[str, float]:
    allowed = allowed_by_user if allowed_by_user is not None else novel_cluster_items(hist, item_to_cluster)
    ru = [u for u in users if u in allowed]
    known = {u: {item_to_cluster[i] for i in hist[u] if i in item_to_cluster} for u in ru}

    def is_new(u: str, i: str) -> bool:
        return i in item_to_cluster and item_to_cluster[i] not in known[u]

    restricted = dict(zip(ru, (
        [i for i, _ in r] for r in model.recommend_batch([hist[u] for u in ru], k=k, allowed_item_ids=[allowed[u] for u in ru])
    ), strict=True))  # fmt: skip
    pop = {u: _pop_recs(ranking, hist[u], k, set(allowed[u])) for u in ru}

    def share_new(lists: Mapping[str, list[str]]) -> float:
        flat = [is_new(u, i) for u in ru for i in lists[u]]
        return float(np.mean(flat)) if flat else 0.0

    novel_future = {u: [i for i in split.test[u] if is_new(u, i) and i not in set(hist[u])] for u in ru}
    nu = [u for u in ru if novel_future[u]]
    out = {
        "restricted_n_users": float(len(ru)),
        "restricted_allowed_share": float(np.mean([i in set(allowed[u]) for u in ru for i in restricted[u]]))
        if any(restricted[u] for u in ru)
        else 0.0,
        f"restricted_new_cluster_share_at_{k}": share_new(restricted),
        f"unrestricted_new_cluster_share_at_{k}": share_new({u: recs[u] for u in ru}),
        "novel_n_users": float(len(nu)),
    }
    for name, lists in (("", restricted), ("pop_", pop), ("unrestricted_", {u: recs[u] for u in ru})):
        out[f"{name}novel_next_hr_at_{k}"] = (
            float(np.mean([hit_at_k(lists[u], {novel_future[u][0]}, k) for u in nu])) if nu else 0.0
        )
        out[f"{name}novel_next_ndcg_at_{k}"] = (
            float(np.mean([ndcg_at_k(lists[u], {novel_future[u][0]}, k) for u in nu])) if nu else 0.0
        )
        out[f"{name}novel_any_hr_at_{k}"] = (
            float(np.mean([hit_at_k(lists[u], set(novel_future[u]), k) for u in nu])) if nu else 0.0
        )
    return out


def train_and_evaluate(
    dataset_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    clusters_dir: str | os.PathLike[str] | None = None,
    **train_kw: Any,
) -> dict[str, float]:
    """Dataset dir -> trained model dir + test metrics (also written to `<out_dir>/metrics.json`).

    Restricted metrics use the interest clusters when `clusters_dir` is given, else item categories."""
    from seren.data import load_dataset

    ds = load_dataset(dataset_dir)
    model = train_seqrec(ds, out_dir, **train_kw)
    item_to_cluster = None
    if clusters_dir:
        from seren.exploration.clusters import Clusters

        item_to_cluster = Clusters.load(clusters_dir).item_to_cluster
    metrics = evaluate_seqrec(model, ds, k=model.config.k, item_to_cluster=item_to_cluster)
    metrics.update(
        best_epoch=float(model.info["best_epoch"]),
        epochs_run=float(model.info["epochs_run"]),
        best_val_hr=float(model.info["best_val_hr"]),
        train_s=float(model.info["train_s"]),
    )
    write_json(Path(out_dir) / METRICS_FILE, metrics)
    return metrics
