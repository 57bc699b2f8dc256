"""Held-out evaluation against popularity (next new item; restricted to clusters new to the user)
and `train_and_evaluate`, the seqrec_train component's one library call.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren.data.dataset import Dataset
from seren.exploration.seqrec.data import METRICS_FILE, SeqSplit, next_new_item, novel_cluster_items, split_sequences
from seren.exploration.seqrec.model import SeqRecModel
from seren.exploration.seqrec.train import train_seqrec
from seren.io import write_json
from seren.metrics import hit_at_k, ndcg_at_k

log = logging.getLogger(__name__)


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
