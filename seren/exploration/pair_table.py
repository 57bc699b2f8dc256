"""The pair table: top-n novel clusters for every (c1, c2) pair, served by lookup.

The same build sharded across Kubeflow tasks (fan-out, merge) is seren/exploration/pair_table_shards.py.

The novelty LLM's input space is finite (N clusters -> N^2 ordered pairs), so it is run offline
over all of them and the online path is a key-value read from the Feast ``novel_interests``
view (entity ``cluster_pair`` = "c1|c2").

Building is batched, shows progress and is resumable: pairs are processed in fixed shards, each
written atomically to ``<out>/shards/part-NNNNN.parquet``; a re-run with the same model, clusters
and settings (``manifest.json`` fingerprint) skips finished shards, a run with different ones
starts over. The final ``pair_table.parquet`` appears atomically only when every shard exists.

Columns: cluster_pair, c1, c2, novel_clusters (list), novel_scores (list; aligner probability when
aligned, else LLM log-prob), llm_clusters / llm_scores (the LLM's candidates before best-of-n).

Missing pair (a cluster added after the build, or a pair left out): `lookup` falls back to the
novel clusters most often recommended for pairs ending in c2 (the user's latest interest), then
to the most often recommended clusters overall; the answer says which source it used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren.errors import ConfigError, DataError
from seren.io import write_json, write_parquet

log = logging.getLogger(__name__)

TABLE_FILE = "pair_table.parquet"
MANIFEST = "manifest.json"
SHARDS = "shards"
SEP = "|"


def pair_key(c1: str, c2: str) -> str:
    return f"{c1}{SEP}{c2}"


def all_pairs(ids: Sequence[str], include_same: bool = True) -> list[tuple[str, str]]:
    """Every ordered pair (N^2 with c1 == c2, which a user with one repeated interest can have)."""
    return [(a, b) for a in ids for b in ids if include_same or a != b]


def model_fingerprint(model: Any) -> str:
    """Cheap identity of the weights (sums per tensor): resume must not mix two models' shards."""
    import torch

    h = hashlib.sha256()
    with torch.no_grad():
        for name, p in model.named_parameters():
            h.update(name.encode())
            h.update(np.float64(p.detach().double().sum().item()).tobytes())
            h.update(np.float64(p.detach().double().abs().sum().item()).tobytes())
    return h.hexdigest()[:16]


def _progress(total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("pair table"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
    )
    bar.start()
    task = bar.add_task("pairs", total=total, completed=initial)
    return bar, task


@dataclass
class BuildStats:
    n_pairs: int
    n_shards: int
    shards_done_before: int
    shards_computed: int
    seconds: float
    pairs_per_s: float


def plan_parts(
    model: Any,
    n: int,
    n_candidates: int | None,
    aligner: Any | None,
    pairs: Sequence[tuple[str, str]] | None,
    shard_size: int,
    method: str,
    n_beams: int | None,
) -> tuple[list[tuple[str, str]], int, dict[str, Any], str]:
    """The pairs, candidate count, settings and their fingerprint (what resume compares)."""
    if n < 1 or shard_size < 1:
        raise ConfigError(f"n and shard_size must be >= 1 (got n={n}, shard_size={shard_size})", "pass positive values")
    pairs = [tuple(p) for p in pairs] if pairs is not None else all_pairs(model.ids)  # type: ignore[misc]
    if not pairs:
        raise DataError("no cluster pairs to compute", "pass clusters with at least 3 interest clusters")
    n_cand = max(n, n_candidates or (3 * n if aligner is not None else n))
    params = {
        "n": n,
        "n_candidates": n_cand,
        "method": method,
        "n_beams": n_beams,
        "shard_size": shard_size,
        "aligned": aligner is not None,
        "aligner": None if aligner is None else [list(map(float, aligner.coef)), float(aligner.intercept)],
        "pairs": hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16],
        "descriptions": hashlib.sha256(json.dumps(model.descriptions).encode()).hexdigest()[:16],
        "model": model_fingerprint(model.model),
    }
    fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return pairs, n_cand, params, fingerprint  # type: ignore[return-value]


def compute_part(
    model: Any,
    aligner: Any | None,
    chunk: Sequence[tuple[str, str]],
    n: int,
    n_cand: int,
    method: str,
    n_beams: int | None,
) -> pd.DataFrame:
    """One part of the table: the LLM's ranked candidates per pair (+ best-of-n with the aligner)."""
    ranked = model.top_novel(list(chunk), n=n_cand, method=method, n_beams=n_beams)
    rows = []
    for (c1, c2), cands in zip(chunk, ranked, strict=True):
        llm_ids = [c for c, _ in cands]
        llm_scores = [float(s) for _, s in cands]
        final = (
            aligner.rerank((c1, c2), llm_ids, n)
            if aligner is not None
            else list(zip(llm_ids[:n], llm_scores[:n], strict=True))
        )
        rows.append(
            {
                "cluster_pair": pair_key(c1, c2),
                "c1": c1,
                "c2": c2,
                "novel_clusters": [c for c, _ in final],
                "novel_scores": [float(s) for _, s in final],
                "llm_clusters": llm_ids,
                "llm_scores": llm_scores,
            }
        )
    return pd.DataFrame(rows)


def build_pair_table(
    model: Any,
    out_dir: str | os.PathLike[str],
    n: int = 3,
    n_candidates: int | None = None,
    aligner: Any | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    shard_size: int = 64,
    method: str = "auto",
    n_beams: int | None = None,
    progress: bool = False,
    on_shard: Callable[[int, int], None] | None = None,
) -> Path:
    """Compute (or finish computing) the table for `pairs` (default: all N^2) into `out_dir`.

    `model` is a NoveltyModel; with an `aligner` the LLM proposes `n_candidates` (default 3n)
    and the aligner keeps the best n (best-of-n). `on_shard(done, total)` is called after each
    shard is safely on disk. Returns the path of the final parquet table.
    """
    out_dir = Path(out_dir)
    pairs, n_cand, params, fingerprint = plan_parts(model, n, n_candidates, aligner, pairs, shard_size, method, n_beams)
    shard_dir = out_dir / SHARDS
    manifest_f = out_dir / MANIFEST
    prev = json.loads(manifest_f.read_text()) if manifest_f.is_file() else {}
    if prev.get("fingerprint") != fingerprint:
        shutil.rmtree(shard_dir, ignore_errors=True)
        write_json(manifest_f, {"fingerprint": fingerprint, "params": params, "n_pairs": len(pairs), "finished": False})
    shard_dir.mkdir(parents=True, exist_ok=True)

    n_shards = (len(pairs) + shard_size - 1) // shard_size
    shard_files = [shard_dir / f"part-{i:05d}.parquet" for i in range(n_shards)]
    done_before = sum(f.exists() for f in shard_files)
    if prev.get("fingerprint") == fingerprint and prev.get("finished") and (out_dir / TABLE_FILE).is_file():
        stats = BuildStats(len(pairs), n_shards, done_before, 0, 0.0, float("nan"))
        write_json(
            manifest_f, {**prev, "stats": stats.__dict__, "first_build": prev.get("first_build", prev.get("stats"))}
        )
        return out_dir / TABLE_FILE

    bar = _progress(len(pairs), min(len(pairs), done_before * shard_size), progress)
    t0 = time.perf_counter()
    computed = pairs_computed = 0
    try:
        for i, f in enumerate(shard_files):
            if f.exists():
                continue
            chunk = pairs[i * shard_size : (i + 1) * shard_size]
            write_parquet(f, compute_part(model, aligner, chunk, n, n_cand, method, n_beams))
            computed += 1
            pairs_computed += len(chunk)
            if bar is not None:
                bar[0].advance(bar[1], len(chunk))
            if on_shard is not None:
                on_shard(i + 1, n_shards)
    finally:
        if bar is not None:
            bar[0].stop()
    seconds = time.perf_counter() - t0
    table = pd.concat([pd.read_parquet(f) for f in shard_files], ignore_index=True)
    if len(table) != len(pairs):
        raise DataError(f"pair table has {len(table)} rows for {len(pairs)} pairs", f"delete {shard_dir} and rebuild")
    write_parquet(out_dir / TABLE_FILE, table)
    stats = BuildStats(
        len(pairs),
        n_shards,
        done_before,
        computed,
        round(seconds, 3),
        pairs_computed / seconds if seconds > 0 and pairs_computed else float("nan"),
    )
    write_json(
        manifest_f,
        {
            "fingerprint": fingerprint,
            "params": params,
            "n_pairs": len(pairs),
            "finished": True,
            "stats": stats.__dict__,
        },
    )
    return out_dir / TABLE_FILE


def baseline_pair_table(transitions: Any, ids: Sequence[str], n: int = 3) -> pd.DataFrame:
    """The all-pairs table in `build_pair_table`'s layout, ranked by the co-occurrence baseline instead of
    the novelty LLM: seconds instead of hours, for tests and benchmarks of what consumes the table."""
    from seren.exploration.novelty import Baselines

    pairs = all_pairs(ids)
    ranked = Baselines.fit(transitions, None, list(ids)).cooccurrence(pairs, n)
    return pd.DataFrame(
        {
            "cluster_pair": [pair_key(a, b) for a, b in pairs],
            "c1": [a for a, _ in pairs],
            "c2": [b for _, b in pairs],
            "novel_clusters": ranked,
            "novel_scores": [[1.0 / (r + 1) for r in range(len(c))] for c in ranked],
        }
    )


def load_pair_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    path = Path(path)
    f = path / TABLE_FILE if path.is_dir() else path
    if not f.is_file():
        raise DataError(
            f"pair table {f} does not exist",
            "build it with `seren pipeline run exploration --local` or build_pair_table",
        )
    try:
        return pd.read_parquet(f)
    except Exception as exc:
        raise DataError(f"{f}: cannot read the pair table ({type(exc).__name__})", "rebuild the pair table") from None


def table_metrics(table: pd.DataFrame, ids: Sequence[str]) -> dict[str, Any]:
    """Coverage and concentration of the recommended novel clusters."""
    recs = Counter(c for row in table["novel_clusters"] for c in row)
    bad = int(sum(r["c1"] in r["novel_clusters"] or r["c2"] in r["novel_clusters"] for _, r in table.iterrows()))
    counts = np.array([recs.get(c, 0) for c in ids], dtype=float)
    p = counts / max(counts.sum(), 1.0)
    return {
        "pairs": int(len(table)),
        "expected_pairs": len(ids) ** 2,
        "clusters_recommended": int((counts > 0).sum()),
        "cluster_coverage": float((counts > 0).mean()) if len(ids) else 0.0,
        "top_cluster_share": float(p.max()) if len(p) else 0.0,
        "gini": float(1 - 2 * np.sum(np.cumsum(np.sort(p)) / max(len(p), 1)) + 1 / max(len(p), 1)) if len(p) else 0.0,
        "pairs_recommending_own_cluster": bad,
    }


class PairLookup:
    """Table lookup with the documented fallbacks for pairs the table does not hold."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.rows = {
            k: (list(c), list(s))
            for k, c, s in zip(table["cluster_pair"], table["novel_clusters"], table["novel_scores"], strict=True)
        }
        by_c2: dict[str, Counter] = {}
        overall: Counter = Counter()
        for c2, clusters in zip(table["c2"], table["novel_clusters"], strict=True):
            by_c2.setdefault(c2, Counter()).update(clusters)
            overall.update(clusters)
        self.by_c2 = by_c2
        self.overall = overall

    def __call__(self, c1: str, c2: str, n: int = 3) -> dict[str, Any]:
        """{'novel_clusters', 'novel_scores', 'source': table | fallback_c2 | fallback_global}."""
        hit = self.rows.get(pair_key(c1, c2))
        if hit is not None:
            return {"novel_clusters": hit[0][:n], "novel_scores": hit[1][:n], "source": "table"}
        for source, counter in (("fallback_c2", self.by_c2.get(c2)), ("fallback_global", self.overall)):
            if counter:
                ranked = [(c, k) for c, k in counter.most_common() if c not in (c1, c2)][:n]
                if ranked:
                    total = sum(counter.values())
                    return {
                        "novel_clusters": [c for c, _ in ranked],
                        "novel_scores": [k / total for _, k in ranked],
                        "source": source,
                    }
        return {"novel_clusters": [], "novel_scores": [], "source": "empty_table"}
