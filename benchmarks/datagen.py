"""Data-layer throughput: synthetic generation, schema validation, parquet write, CSV import.

Generates ~1M interactions (10k users x ~100 exposures, 5k items) and times each stage
separately; rows/s is interactions per second of wall time. The machine is shared with other
jobs, so load average is recorded next to the numbers; best of --repeats is reported.

Run: .venv/bin/python benchmarks/datagen.py [--users 10000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent / "results" / "datagen.json"


def machine() -> dict[str, object]:
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


CPU: dict[str, float] = {}


def best(fn, repeats: int, name: str = "") -> tuple[float, object]:
    """Best wall time of `repeats` runs; the matching process CPU time goes to CPU[name]."""
    times, cpu, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    CPU[name] = round(min(cpu), 2)
    return min(times), out


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=5_000)
    ap.add_argument("--events-per-user", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    from seren.data import save_dataset
    from seren.data.adapters import load_interactions
    from seren.data.schema import validate_interactions
    from seren.data.synthetic import SyntheticConfig, simulate
    from seren.io import write_json

    load0 = round(os.getloadavg()[0], 2)
    cfg = SyntheticConfig(n_users=args.users, n_items=args.items, events_per_user=args.events_per_user, seed=0)
    t_gen, ds = best(lambda: simulate(cfg), args.repeats, "generate")
    n = len(ds.interactions)
    t_val, _ = best(lambda: validate_interactions(ds.interactions), args.repeats, "validate_interactions")
    t_full, ds = best(lambda: ds.validate(), 1, "validate_dataset")
    with tempfile.TemporaryDirectory() as tmp:
        t_save, _ = best(lambda: save_dataset(ds, Path(tmp) / "ds"), args.repeats, "save_parquet")
        csv = Path(tmp) / "interactions.csv"
        ds.interactions.assign(timestamp=ds.interactions["timestamp"].astype("int64") // 10**9).to_csv(csv, index=False)
        t_csv, _ = best(lambda: load_interactions(csv), args.repeats, "csv_import")
    res = {
        "benchmark": "datagen",
        "config": {"n_users": cfg.n_users, "n_items": cfg.n_items, "events_per_user": cfg.events_per_user},
        "interactions": n,
        "labels": int(len(ds.labels)),
        "label_positive_share": round(float(ds.labels["serendipitous"].mean()), 4),
        "generate_s": round(t_gen, 2),
        "generate_rows_per_s": round(n / t_gen),
        "validate_interactions_s": round(t_val, 2),
        "validate_rows_per_s": round(n / t_val),
        "validate_dataset_s": round(t_full, 2),
        "generate_plus_validate_s": round(t_gen + t_full, 2),
        "save_parquet_s": round(t_save, 2),
        "csv_import_s": round(t_csv, 2),
        "csv_import_rows_per_s": round(n / t_csv),
        "cpu_s": CPU,
        "generate_rows_per_cpu_s": round(n / CPU["generate"]),
        "validate_rows_per_cpu_s": round(n / CPU["validate_interactions"]),
        "repeats": args.repeats,
        "machine": {**machine(), "load_avg_1m_at_start": load0},
        "note": "wall time on a shared machine (see load averages); cpu_s is this process's CPU time",
    }
    for k, v in res.items():
        if k not in ("machine", "config"):
            print(f"{k:>26}: {v}")
    print(f"{'machine':>26}: {res['machine']}")
    write_json(args.out, res)
    print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
