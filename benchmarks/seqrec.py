"""Sequence recommender: quality vs popularity, training time and recommend latency.

Two datasets: the synthetic generator at its default size (500 users, 800 items) and MovieLens
ml-latest-small (../shared/data/ml-latest-small; skipped with the reason when absent). For each:
train with early stopping (chronological split of positive events; validation HR@10), then on
the held-out test part HR@10 / NDCG@10 of the next new item vs popularity, the restricted mode
(item category stands in for interest clusters: recommendations masked to categories new to the
user) and latency: batched (all test users, ms per user) and one user per call (p50/p99).

Wall times are on a shared machine: the load average is recorded and process CPU time is
reported next to wall time.

Run: .venv/bin/python benchmarks/seqrec.py [--quick] [--epochs 200] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "seqrec.json"
MOVIELENS = REPO.parent / "shared" / "data" / "ml-latest-small"


def machine() -> dict[str, object]:
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads_default": torch.get_num_threads(),
        "torch_threads_used": 1,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def run(name: str, ds: Any, train_kw: dict[str, Any], work: Path) -> dict[str, Any]:
    from seren.exploration.seqrec import evaluate_seqrec, split_sequences, train_seqrec

    load0 = round(os.getloadavg()[0], 2)
    t0, c0 = time.perf_counter(), time.process_time()
    model = train_seqrec(ds, work / name, resume=False, progress=sys.stderr.isatty(), **train_kw)
    train_wall, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    ev = evaluate_seqrec(model, ds, k=10)

    split = split_sequences(ds, model.config.val_frac, model.config.test_frac)
    users = sorted(split.test)
    hists = [split.history(u, "test") for u in users]
    t0 = time.perf_counter()
    model.recommend_batch(hists, k=10)
    batch_ms = 1000 * (time.perf_counter() - t0) / len(hists)
    rng = np.random.default_rng(0)
    single = []
    for i in rng.choice(len(hists), size=min(200, len(hists)), replace=False):
        t = time.perf_counter()
        model.recommend(hists[i], k=10)
        single.append(1000 * (time.perf_counter() - t))
    info = model.info
    n_pos = (
        sum(len(s) for s in split.train.values())
        + sum(len(s) for s in split.val.values())
        + sum(len(s) for s in split.test.values())
    )
    r4 = lambda x: round(float(x), 4)  # noqa: E731
    return {
        "data": {
            "users": len(split.train),
            "items_in_vocab": model.n_items,
            "positive_events": n_pos,
            "train_windows": info["n_windows"],
            "test_users_with_new_next_item": int(ev["n_users"]),
        },
        "settings": {k: v for k, v in train_kw.items()},
        "split": info["split"],
        "quality": {
            "hr_at_10": r4(ev["hr_at_10"]),
            "ndcg_at_10": r4(ev["ndcg_at_10"]),
            "popularity_hr_at_10": r4(ev["pop_hr_at_10"]),
            "popularity_ndcg_at_10": r4(ev["pop_ndcg_at_10"]),
            "hr_lift_over_popularity": r4(ev["hr_at_10"] / ev["pop_hr_at_10"]) if ev["pop_hr_at_10"] else None,
        },
        "restricted_by_category": {
            k: r4(v) if isinstance(v, float) and not k.endswith("n_users") else int(v)
            for k, v in ev.items()
            if "novel" in k or "restricted" in k or "new_cluster" in k
        },
        "training": {
            "wall_s": round(train_wall, 1),
            "cpu_s": round(train_cpu, 1),
            "epochs_run": info["epochs_run"],
            "best_epoch": info["best_epoch"],
            "stop_reason": info["stop_reason"],
            "best_val_hr_at_10": r4(info["best_val_hr"]),
            "s_per_epoch": round(info["train_s"] / max(1, info["epochs_run"]), 2),
            "load_avg_1m_at_start": load0,
        },
        "latency": {
            "batched_ms_per_user": round(batch_ms, 3),
            "single_call_p50_ms": round(float(np.percentile(single, 50)), 2),
            "single_call_p99_ms": round(float(np.percentile(single, 99)), 2),
            "single_calls": len(single),
        },
        "history": info["history"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few epochs only (smoke run)")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--movielens", type=Path, default=MOVIELENS)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    import torch

    from seren.data.movielens import load_movielens
    from seren.data.synthetic import SyntheticConfig, generate
    from seren.io import write_json

    info = machine()
    # one intra-op thread for the whole process, as a serving/nearline process would run it: the
    # library switches to one thread per call anyway, and switching back and forth costs ~15 ms
    # per single-user call on this shared machine
    torch.set_num_threads(1)
    epochs = 3 if args.quick else args.epochs
    defaults = dict(epochs=epochs, max_len=50, dim=64, n_blocks=2, patience=5, seed=0)
    res: dict[str, Any] = {"benchmark": "seqrec", "machine": info, "datasets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        res["datasets"]["synthetic_default"] = run("synthetic", generate(SyntheticConfig()), defaults, Path(tmp))
        if (args.movielens / "ratings.csv").is_file():
            # a sparser catalogue (5.3k items, 48k positives): full softmax and more dropout; with the
            # defaults (256 sampled negatives, dropout 0.2) it stopped at epoch 3 below popularity
            ml_kw = {**defaults, "n_negatives": 1_000_000, "dropout": 0.5, "lr": 2e-3, "patience": 4}
            res["datasets"]["ml_latest_small"] = run("movielens", load_movielens(args.movielens), ml_kw, Path(tmp))
        else:
            res["datasets"]["ml_latest_small"] = {"skipped": f"MovieLens ml-latest-small not found at {args.movielens}"}
    res["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    res["note"] = (
        "next-new-item protocol: history = train+validation positives, target = first test positive not in the "
        "history; recommendations exclude seen items. Wall times on a shared 2-core machine (see load averages)."
    )
    for name, r in res["datasets"].items():
        print(f"== {name}")
        for key in ("data", "quality", "restricted_by_category", "training", "latency", "skipped"):
            if key in r:
                print(f"  {key}: {r[key]}")
    print(f"machine: {res['machine']}")
    if not args.quick:
        write_json(args.out, res)
        print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
