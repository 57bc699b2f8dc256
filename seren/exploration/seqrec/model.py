"""The SASRec network and `SeqRecModel`, the trained recommender (load/save, batched
recommendations masked to allowed items, popularity fallback).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from seren.errors import ConfigError, DataError
from seren.exploration.seqrec.data import CONFIG_FILE, FORMAT_VERSION, MODEL_FILE, Recs, SeqRecConfig, torch_threads
from seren.io import atomic_path, write_json

log = logging.getLogger(__name__)


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
