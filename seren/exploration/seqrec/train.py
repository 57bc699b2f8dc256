"""Training with early stopping on validation HR@k, resumable from `checkpoint.pt` (fingerprinted
by `seren.resume.fingerprint`: other settings or data start over).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from seren.data.dataset import Dataset
from seren.errors import ConfigError, DataError
from seren.exploration.seqrec.data import CHECKPOINT_FILE, SeqRecConfig, SeqSplit, split_sequences, torch_threads
from seren.exploration.seqrec.model import SASRec, SeqRecModel, _build_net, _left_pad
from seren.io import atomic_path
from seren.metrics import hit_at_k
from seren.resume import fingerprint

log = logging.getLogger(__name__)


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
    """The checkpoint's fingerprint (`seren.resume`): every setting, the vocabulary and the training sequences."""
    return fingerprint(dataclasses.asdict(cfg), list(item_ids), {u: list(train[u]) for u in sorted(train)})


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
