"""Feast online store: read latency for a 100-entity batch (SQLite vs Redis, same run) and
materialization throughput.

Builds a synthetic dataset, writes the offline sources once, then for each target (local
SQLite, and a redis-server this script starts on a free loopback port) applies, materializes
(timed: entity rows written to the online store per second) and reads random 100-user batches
of `user_stats` (timed after warm-up) both through `feature_repo.store.get_online` (with the
freshness check) and through Feast's `get_online_features` alone. The machine is shared, so
the load average is recorded with the numbers.

Run: .venv/bin/python benchmarks/feast_online.py [--users 20000] [--reads 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "feast_online.json"
if str(REPO) not in sys.path:  # `python benchmarks/feast_online.py` from a checkout
    sys.path.insert(0, str(REPO))


def machine() -> dict[str, object]:
    import feast
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "feast": feast.__version__,
        "redis_server": subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2],
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis() -> tuple[subprocess.Popen, int]:
    import redis

    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server not found: run `make setup` (installs it with apt)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    for _ in range(200):
        try:
            client.ping()
            return proc, port
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    sys.exit(f"redis-server did not start on port {port}")


def pct(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "mean_ms": round(float(a.mean()), 3),
    }


def bench_target(
    target: str, data_dir: Path, offline: Path, user_ids: list[str], batch: int, reads: int, seed: int
) -> dict[str, object]:
    from feature_repo import store as fs

    data_dir.mkdir(parents=True)
    shutil.copytree(offline, data_dir / "offline")
    st = fs.get_store(target, data_dir)
    fs.apply(st)
    t0, c0 = time.perf_counter(), time.process_time()
    counts = fs.materialize(st, views=["user_stats", "item_features"])
    mat_s, mat_cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = sum(counts.values())

    rng = np.random.default_rng(seed)
    batches = [list(rng.choice(user_ids, size=batch, replace=False)) for _ in range(reads + 20)]
    refs = [f"user_stats:{f}" for f in fs.VIEWS["user_stats"].features]
    wrapper, raw, cpu = [], [], []
    for i, ids in enumerate(batches):
        t, c = time.perf_counter(), time.process_time()
        df = fs.get_online(st, "user_stats", ids)
        dt = time.perf_counter() - t
        if i >= 20:
            wrapper.append(dt)
            cpu.append(time.process_time() - c)
        assert (df["status"] == "ok").all(), "every sampled user was materialized"
        t = time.perf_counter()
        st.get_online_features(features=refs, entity_rows=[{"user_id": u} for u in ids]).to_dict()
        dt = time.perf_counter() - t
        if i >= 20:
            raw.append(dt)
    fs.teardown(st)
    return {
        "materialize": {
            "rows": rows,
            "seconds": round(mat_s, 3),
            "rows_per_s": round(rows / mat_s, 1),
            "cpu_seconds": round(mat_cpu, 3),
            "rows_per_cpu_s": round(rows / mat_cpu, 1),
            "per_view": counts,
        },
        "online_read_get_online": {**pct(wrapper), "client_cpu_mean_ms": round(1000 * float(np.mean(cpu)), 3)},
        "online_read_feast_only": pct(raw),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--items", type=int, default=5_000)
    ap.add_argument("--events-per-user", type=int, default=20)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--reads", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    from feature_repo import store as fs
    from seren.data.synthetic import SyntheticConfig, generate
    from seren.io import write_json

    ds = generate(
        SyntheticConfig(n_users=args.users, n_items=args.items, events_per_user=args.events_per_user, seed=args.seed)
    )
    users = sorted(ds.interactions["user_id"].unique())
    load_start = round(os.getloadavg()[0], 2)
    proc, port = start_redis()
    os.environ["SEREN_REDIS_URL"] = f"127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp)
            t0 = time.perf_counter()
            fs.write_offline(ds, base / "src")
            write_s = time.perf_counter() - t0
            results = {
                t: bench_target(t, base / t, base / "src" / "offline", users, args.batch, args.reads, args.seed)
                for t in ("local", "redis")
            }
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    s, r = results["local"], results["redis"]
    report = {
        "benchmark": "feast_online",
        "machine": machine(),
        "params": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "interactions": len(ds.interactions),
        },
        "write_offline_seconds": round(write_s, 3),
        "sqlite": s,
        "redis": r,
        "p50_ratio_sqlite_over_redis": round(
            s["online_read_get_online"]["p50_ms"] / r["online_read_get_online"]["p50_ms"], 3
        ),
        "p99_ratio_sqlite_over_redis": round(
            s["online_read_get_online"]["p99_ms"] / r["online_read_get_online"]["p99_ms"], 3
        ),
        "load_avg_1m_at_start": load_start,
        "note": "latency of one get_online call for a batch of 100 user_stats rows (10 features); "
        "feast_only = FeatureStore.get_online_features(...).to_dict() without seren's freshness/DataFrame step; "
        "client_cpu / cpu_seconds = this process's CPU time, less sensitive to other jobs on a shared machine",
    }
    write_json(args.out, report)
    for name, res in (("sqlite", s), ("redis", r)):
        g, f, m = res["online_read_get_online"], res["online_read_feast_only"], res["materialize"]
        print(
            f"{name:6s} read {args.batch}: p50 {g['p50_ms']:.2f} ms p99 {g['p99_ms']:.2f} ms "
            f"(feast only p50 {f['p50_ms']:.2f} ms, client CPU {g['client_cpu_mean_ms']:.2f} ms) | "
            f"materialize {m['rows']} rows {m['rows_per_s']:.0f} rows/s ({m['rows_per_cpu_s']:.0f} per CPU s)"
        )
    print(f"sqlite/redis p50 ratio {report['p50_ratio_sqlite_over_redis']}  -> {args.out}")
    return report


if __name__ == "__main__":
    main()
