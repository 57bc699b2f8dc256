"""`seren recommend` request latency: local SQLite vs Redis online store, same users, one run.

Builds a synthetic dataset, materializes item_features/user_stats into both stores (a
redis-server is started on a free loopback port with benchmarks/feast_online.py's helpers) and
pushes the same nearline-shaped rows into each: per user a cached main slate, SerenGPT
candidates with scores, an exploration slate and a cluster pair; per cluster pair its novel
clusters. The rows are random (the nearline job is not run here): the request path only reads
them, so their content does not change the latency.

Requests alternate between the two stores user by user (load on this shared machine hits both
alike). Per request it records wall time, this process's CPU time, the time inside seren's
`feature_repo.store.get_online` (3 reads: candidates, pair table, item titles) and the time
inside Feast's `FeatureStore.get_online_features` itself.

Run: .venv/bin/python benchmarks/recommend.py [--users 2000] [--requests 500]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "recommend.json"
if str(REPO) not in sys.path:  # `python benchmarks/recommend.py` from a checkout
    sys.path.insert(0, str(REPO))

from benchmarks.feast_online import machine, pct, start_redis  # noqa: E402


def nearline_rows(users: list[str], items: list[str], n_clusters: int, seed: int) -> tuple[Any, Any]:
    """user_candidates and novel_interests rows shaped like the nearline job's output."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    clusters = [f"c{i}" for i in range(n_clusters)]
    pairs = [f"{a}|{b}" for a in clusters for b in clusters]
    now = pd.Timestamp(datetime.now(UTC))
    cand = []
    for u in users:
        pick = rng.choice(items, size=90, replace=False).tolist()
        scores = np.sort(rng.uniform(0.5, 1.0, size=20))[::-1].round(4).tolist()
        cand.append(
            {
                "user_id": u,
                "main_item_ids": pick[:50],
                "candidate_item_ids": pick[45:65],  # overlaps the main slate a little, as real ones do
                "candidate_scores": scores,
                "explore_item_ids": pick[65:85],
                "cluster_pair": pairs[int(rng.integers(len(pairs)))],
                "event_timestamp": now,
            }
        )
    novel = [
        {
            "cluster_pair": p,
            "novel_clusters": rng.choice(clusters, size=3, replace=False).tolist(),
            "novel_scores": np.sort(rng.uniform(0, 1, size=3))[::-1].round(4).tolist(),
            "event_timestamp": now,
        }
        for p in pairs
    ]
    return pd.DataFrame(cand), pd.DataFrame(novel)


class FeastTimer:
    """Wraps one store's `get_online_features` to add up the time spent inside Feast."""

    def __init__(self, store: Any) -> None:
        self.seconds = 0.0
        inner = store.get_online_features

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t

        store.get_online_features = timed


def setup_store(target: str, data_dir: Path, offline: Path, cand: Any, novel: Any) -> Any:
    import shutil

    from feature_repo import store as fs

    data_dir.mkdir(parents=True)
    shutil.copytree(offline, data_dir / "offline")
    st = fs.get_store(target, data_dir)
    fs.apply(st)
    fs.materialize(st, views=["user_stats", "item_features"])
    fs.push(st, "user_candidates_push", cand, to="online")
    fs.push(st, "novel_interest_push", novel, to="online")
    return st


def summarize(rows: list[dict[str, float]]) -> dict[str, Any]:
    wall = [r["wall"] for r in rows]
    reads = float(np.sum([r["reads"] for r in rows]))
    feast = float(np.sum([r["feast"] for r in rows]))
    total = float(np.sum(wall))
    return {
        "request": pct(wall),
        "client_cpu_mean_ms": round(1000 * float(np.mean([r["cpu"] for r in rows])), 3),
        "get_online": pct([r["reads"] for r in rows]),
        "feast_get_online_features": pct([r["feast"] for r in rows]),
        "share_in_get_online": round(reads / total, 3),
        "share_in_feast_get_online_features": round(feast / total, 3),
        "requests": len(rows),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2_000)
    ap.add_argument("--items", type=int, default=2_000)
    ap.add_argument("--clusters", type=int, default=24)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    from feature_repo import store as fs
    from seren.data.synthetic import SyntheticConfig, generate
    from seren.io import write_json
    from seren.recommend import recommend

    ds = generate(SyntheticConfig(n_users=args.users, n_items=args.items, events_per_user=20, seed=args.seed))
    users = sorted(ds.interactions["user_id"].unique())
    cand, novel = nearline_rows(users, ds.items["item_id"].tolist(), args.clusters, args.seed)
    load_start = round(os.getloadavg()[0], 2)
    proc, port = start_redis()
    os.environ["SEREN_REDIS_URL"] = f"127.0.0.1:{port}"
    stores: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp)
            fs.write_offline(ds, base / "src")
            for t in ("local", "redis"):
                stores[t] = setup_store(t, base / t, base / "src" / "offline", cand, novel)
            timers = {t: FeastTimer(st) for t, st in stores.items()}
            rng = np.random.default_rng(args.seed)
            sample = rng.choice(users, size=args.warmup + args.requests, replace=True).tolist()
            rows: dict[str, list[dict[str, float]]] = {t: [] for t in stores}
            slates_equal = 0
            for i, u in enumerate(sample):
                slates = {}
                for t, st in stores.items():
                    timers[t].seconds = 0.0
                    w, c = time.perf_counter(), time.process_time()
                    res = recommend(st, u, k=args.k)
                    wall, cpu = time.perf_counter() - w, time.process_time() - c
                    assert len(res["slate"]) == args.k and not res["fallbacks"], res["fallbacks"]
                    slates[t] = [s["item_id"] for s in res["slate"]]
                    if i >= args.warmup:
                        rows[t].append(
                            {
                                "wall": wall,
                                "cpu": cpu,
                                "reads": res["timings_ms"]["online_reads"] / 1000,
                                "feast": timers[t].seconds,
                            }
                        )
                slates_equal += slates["local"] == slates["redis"]
            for st in stores.values():
                fs.teardown(st)
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    s, r = summarize(rows["local"]), summarize(rows["redis"])
    report = {
        "benchmark": "recommend",
        "machine": machine(),
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "sqlite": s,
        "redis": r,
        "p50_ratio_sqlite_over_redis": round(s["request"]["p50_ms"] / r["request"]["p50_ms"], 3),
        "p99_ratio_sqlite_over_redis": round(s["request"]["p99_ms"] / r["request"]["p99_ms"], 3),
        "identical_slates": f"{slates_equal}/{len(sample)}",
        "load_avg_1m_at_start": load_start,
        "note": "one recommend() call = 3 online reads (user_candidates, novel_interests, item_features for "
        "the k slate items) + slate assembly; get_online = seren's reader (Feast + freshness/DataFrame); "
        "feast_get_online_features = time inside FeatureStore.get_online_features only; requests alternate "
        "between the stores user by user; excludes process start-up (the CLI pays ~10-20 s of imports once)",
    }
    write_json(args.out, report)
    for name, res in (("sqlite", s), ("redis", r)):
        q, g = res["request"], res["get_online"]
        print(
            f"{name:6s} recommend k={args.k}: p50 {q['p50_ms']:.2f} ms p99 {q['p99_ms']:.2f} ms "
            f"(get_online p50 {g['p50_ms']:.2f} ms, {100 * res['share_in_get_online']:.0f}% of the request; "
            f"Feast itself {100 * res['share_in_feast_get_online_features']:.0f}%; client CPU {res['client_cpu_mean_ms']:.2f} ms)"
        )
    print(
        f"sqlite/redis p50 ratio {report['p50_ratio_sqlite_over_redis']}, p99 ratio "
        f"{report['p99_ratio_sqlite_over_redis']}; identical slates {report['identical_slates']} -> {args.out}"
    )
    return report


if __name__ == "__main__":
    main()
