"""Pair-table throughput: pairs/s of the novelty LLM's top-n novel clusters, and the projected time
for every pair at the paper's scale (~760 clusters -> 577,600 ordered pairs).

Two decoders (seren.exploration.novelty):
  score  exact log-prob of every valid description (prompt once, KV cache shared); cost ~ N
  beam   constrained beam search along the description trie; cost ~ beam width, not N
Cluster descriptions are three distinct theme words each (the length c-TF-IDF descriptions have);
the base SmolLM2 weights are used because throughput does not depend on the fine-tune.
The machine is shared with other jobs: the load average is recorded with each run, and both wall
time and this process's CPU time are measured. With `--threads 1` (the default on CPU) the CPU
time is contention-proof: pairs per CPU-second is the rate of one dedicated core, and the
projection for all pairs is given per core (pairs are independent, so cores/processes divide it).

Run: .venv/bin/python benchmarks/pair_table.py [--model smollm2] [--sample 12] [--threads 1] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

OUT = Path(__file__).resolve().parent / "results" / "pair_table.json"
PAPER_CLUSTERS = 760


def descriptions(n: int, seed: int = 0) -> dict[str, str]:
    """n unique 3-word descriptions from the synthetic catalogue's theme words."""
    from seren.data.synthetic import CATALOGUE

    words = sorted({w for _, _, subs in CATALOGUE.values() for theme in subs.values() for w in theme})
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    while len(out) < n:
        d = ", ".join(rng.choice(words, size=3, replace=False))
        if d not in out.values():
            out[f"c{len(out):04d}"] = d
    return out


def measure(model, tok, n_clusters: int, method: str, sample: int, n: int, n_beams: int | None, batch: int) -> dict:
    from seren.exploration.novelty import NoveltyModel
    from seren.exploration.pair_table import all_pairs

    nm = NoveltyModel(model, tok, descriptions(n_clusters))
    rng = np.random.default_rng(1)
    pairs = all_pairs(nm.ids)
    chosen = [pairs[i] for i in rng.choice(len(pairs), size=min(sample, len(pairs)), replace=False)]
    nm.top_novel(chosen[:1], n=n, method=method, n_beams=n_beams)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(chosen), batch):
        res = nm.top_novel(chosen[i : i + batch], n=n, method=method, n_beams=n_beams)
        assert all(
            len(r) == n and not {c for c, _ in r} & set(p) for r, p in zip(res, chosen[i : i + batch], strict=True)
        )
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    rate, cpu_rate = len(chosen) / secs, len(chosen) / cpu
    total = n_clusters**2
    return {
        "clusters": n_clusters,
        "method": method,
        "n": n,
        "n_beams": n_beams or n,
        "pairs_timed": len(chosen),
        "seconds": round(secs, 2),
        "cpu_seconds": round(cpu, 2),
        "pairs_per_s": round(rate, 4),
        "pairs_per_cpu_s": round(cpu_rate, 4),
        "all_pairs": total,
        "projected_hours_all_pairs": round(total / rate / 3600, 2),
        "projected_core_hours_all_pairs": round(total / cpu_rate / 3600, 2),
        "mean_description_tokens": float(np.mean([len(s) for s in nm.trie.sequences])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--sample", type=int, default=12, help="pairs timed per configuration")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch threads on CPU (1: CPU time is contention-proof)")
    args = ap.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(args.threads)

    from seren.llm.base import load_causal_lm

    load0 = os.getloadavg()[0]
    model, tok = load_causal_lm(args.model)
    model.to(args.device)
    configs = [
        # (clusters, method, n, n_beams, batch)
        (24, "score", 3, None, 8),  # the demo pipeline's table (6 x 4 clusters)
        (24, "beam", 3, None, 8),
        (PAPER_CLUSTERS, "beam", 3, None, 8),  # table width 3
        (PAPER_CLUSTERS, "beam", 10, None, 4),  # 10 candidates for best-of-n alignment
        (PAPER_CLUSTERS, "score", 3, None, 1),  # exact scoring: every one of the 760 answers
    ]
    runs = []
    for clusters, method, n, n_beams, batch in configs:
        sample = args.sample if not (method == "score" and clusters > 100) else max(2, args.sample // 6)
        r = measure(model, tok, clusters, method, sample, n, n_beams, batch)
        r["load_avg_1m"] = os.getloadavg()[0]
        runs.append(r)
        print(
            f"{clusters:>4} clusters  {method:<5} n={n:<2} {r['pairs_per_s']:>8.3f} pairs/s ({r['pairs_per_cpu_s']:.3f} per CPU-s)"
            f"  -> all {r['all_pairs']:>7} pairs: {r['projected_hours_all_pairs']:>9.2f} h wall, {r['projected_core_hours_all_pairs']:>9.2f} core-h"
        )
    best = max((r for r in runs if r["clusters"] == PAPER_CLUSTERS and r["n"] == 3), key=lambda r: r["pairs_per_cpu_s"])
    result = {
        "benchmark": "pair_table",
        "model": args.model,
        "device": args.device,
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else "not lent to this task",
            "load_avg_1m_at_start": load0,
        },
        "runs": runs,
        "paper_scale": {
            "clusters": PAPER_CLUSTERS,
            "pairs": PAPER_CLUSTERS**2,
            "best_method": best["method"],
            "pairs_per_s_wall": best["pairs_per_s"],
            "pairs_per_cpu_s": best["pairs_per_cpu_s"],
            "projected_hours_wall_as_measured": best["projected_hours_all_pairs"],
            "projected_core_hours": best["projected_core_hours_all_pairs"],
            "projected_hours_on_this_machine_all_cores": round(
                best["projected_core_hours_all_pairs"] / max(1, os.cpu_count() or 1), 2
            ),
        },
        "notes": (
            "shared CPU (see load_avg_1m): wall rates are depressed by other jobs; per-CPU-second rates with "
            f"{torch.get_num_threads()} torch thread(s) are contention-proof and pairs are independent, so "
            "core-hours divide across cores/processes; beam cost is independent of N; GPU: not lent to this task"
        ),
    }
    from seren.io import write_json

    write_json(OUT, result)
    print(
        f"paper scale ({PAPER_CLUSTERS} clusters, {PAPER_CLUSTERS**2} pairs): {best['projected_core_hours_all_pairs']} core-hours"
        f" ({best['projected_hours_all_pairs']} h wall as measured) with {best['method']} on {args.device}; wrote {OUT}"
    )


if __name__ == "__main__":
    main()
