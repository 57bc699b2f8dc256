"""Scorer benchmark: head-only P(Yes) vs full-vocabulary logits vs generate(), SmolLM2-135M, CPU fp32.

Same 32 prompts for every method (synthetic users' cognition profiles + candidate item texts,
the real prompt format). Two workloads:
  nearline   - 4 users x 8 candidates (how SERAL's nearline job scores: a user's candidate set)
  distinct   - 32 different users x 1 candidate (only the system prompt is shared)
Methods:
  naive        model(...).logits: full vocabulary at every position, then pick Yes/No at the last
  head         ScoringHead on the same padded batch: decoder once, last position, 2 LM-head rows
  head+prefix  SerenScorer.score: head + the batch's common token prefix run once (KV cache reuse)
  generate     model.generate(max_new_tokens=1) per item, unbatched
The CPU limit is FLOP-based: 2 x params x prompt tokens per item at the measured fp32 matmul rate.
The machine is shared with other jobs: load average is recorded; best-of-N and median are both kept.

Methods run interleaved, round by round, so a noisy neighbour slows all of them alike.

Run: .venv/bin/python benchmarks/scorer.py [--repeats 3] [--model smollm2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

OUT = Path(__file__).resolve().parent / "results" / "scorer.json"


def matmul_gflops(n: int = 1024, seconds: float = 2.0) -> float:
    """Sustained fp32 GEMM rate with this process's torch threads (the physical ceiling here)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def workload(tokenizer, n_users: int, per_user: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Real cognition profiles of synthetic users and unseen candidate items (realistic lengths)."""
    from seren.data.synthetic import SyntheticConfig, generate
    from seren.profiles import build_profiles

    ds = generate(SyntheticConfig(n_users=max(40, n_users), n_items=300, seed=seed))
    users = sorted(ds.interactions["user_id"].unique())[:n_users]
    prof = build_profiles(ds, tokenizer, users=users).set_index("user_id")["profile_text"]
    rng = np.random.default_rng(seed)
    items = ds.items.reset_index(drop=True)
    profiles, texts = [], []
    for u in users:
        for j in rng.choice(len(items), size=per_user, replace=False):
            it = items.iloc[int(j)]
            profiles.append(prof[u])
            texts.append(f"{it['title']} ({it['category']}, ${it['price']:.2f}). {it['text']}")
    return profiles, texts


def run(model: str, repeats: int, gen_repeats: int, gen_items: int) -> dict:
    from seren.llm.base import resolve_base_model
    from seren.llm.scorer import SerenScorer

    t0 = time.perf_counter()
    path = resolve_base_model(model)
    scorer = SerenScorer.from_pretrained(path)
    load_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in scorer.model.parameters())
    head_params = scorer.model.get_output_embeddings().weight.numel()
    rate = matmul_gflops()
    print(
        f"model {path} ({n_params / 1e6:.1f}M params), loaded in {load_s:.1f}s; fp32 GEMM {rate:.0f} GFLOP/s",
        flush=True,
    )

    results: dict = {}
    for name, n_users, per_user in (("nearline_4x8", 4, 8), ("distinct_32x1", 32, 1)):
        profiles, items = workload(scorer.tokenizer, n_users, per_user)
        ids, mask = scorer.encode(profiles, items)
        n = len(items)
        tokens = mask.sum(1).double()
        mean_tokens = float(tokens.mean())
        profile_tokens = [len(scorer.tokenizer(p)["input_ids"]) for p in profiles]
        item_tokens = [len(scorer.tokenizer(i)["input_ids"]) for i in items]

        def head_fn(ids=ids, mask=mask) -> np.ndarray:
            with torch.inference_mode():
                return scorer.head(ids, mask).numpy()

        methods: dict[str, Callable[[], np.ndarray]] = {
            "naive": lambda p=profiles, i=items, n=n: scorer.naive_score(p, i, batch_size=n),
            "head": head_fn,
            "head+prefix": lambda p=profiles, i=items, n=n: scorer.score(p, i, batch_size=n),
            # Unbatched by design: a subset keeps the run short; items/s is per item either way.
            "generate": lambda p=profiles, i=items: scorer.generate_score(p[:gen_items], i[:gen_items]),
        }
        # Interleave methods round by round: the CPU is shared, so each method sees the same contention.
        times: dict[str, list[float]] = {m: [] for m in methods}
        scores: dict[str, np.ndarray] = {m: fn() for m, fn in methods.items() if m != "generate"}  # warm-up
        for r in range(repeats):
            for m, fn in methods.items():
                if m == "generate" and r >= gen_repeats:
                    continue
                t0 = time.perf_counter()
                scores[m] = fn()
                times[m].append(time.perf_counter() - t0)
            print(
                f"  {name} round {r + 1}: " + ", ".join(f"{m} {t[-1]:.2f}s" for m, t in times.items() if t), flush=True
            )
        rows: dict[str, dict] = {}
        for m, ts in times.items():
            k = gen_items if m == "generate" else n
            best, med = min(ts), statistics.median(ts)
            rows[m] = {
                "items": k,
                "rounds": len(ts),
                "seconds_best": round(best, 4),
                "seconds_median": round(med, 4),
                "items_per_s_best": round(k / best, 3),
                "items_per_s_median": round(k / med, 3),
            }
            print(f"  {name:14s} {m:12s} {k / best:8.2f} items/s best  {k / med:8.2f} median", flush=True)
        for m in rows:
            rows[m]["speedup_vs_naive_best"] = round(rows[m]["items_per_s_best"] / rows["naive"]["items_per_s_best"], 2)
            rows[m]["speedup_vs_naive_median"] = round(
                rows[m]["items_per_s_median"] / rows["naive"]["items_per_s_median"], 2
            )
            k = len(scores[m])
            rows[m]["max_abs_diff_vs_naive"] = float(np.abs(scores[m] - scores["naive"][:k]).max())
        # Physical ceilings at the measured GEMM rate.
        full_limit = rate * 1e9 / (2 * n_params * mean_tokens)
        body_limit = rate * 1e9 / (2 * (n_params - head_params) * mean_tokens)
        results[name] = {
            "n_items": n,
            "n_users": n_users,
            "prompt_tokens_mean": round(mean_tokens, 1),
            "prompt_tokens_max": int(tokens.max()),
            "padded_width": int(ids.shape[1]),
            "profile_tokens_mean": round(float(np.mean(profile_tokens)), 1),
            "item_tokens_mean": round(float(np.mean(item_tokens)), 1),
            "methods": rows,
            "flop_limit_items_per_s_full_forward": round(full_limit, 2),
            "flop_limit_items_per_s_without_lm_head": round(body_limit, 2),
            "head_fraction_of_flop_limit": round(rows["head"]["items_per_s_best"] / full_limit, 3),
        }
        print(
            f"  {name}: {mean_tokens:.0f} tokens/prompt; FLOP limit {full_limit:.1f} items/s "
            f"(2 x {n_params / 1e6:.1f}M x tokens), {body_limit:.1f} without the LM head; "
            f"head+prefix vs naive {rows['head+prefix']['speedup_vs_naive_best']}x, head vs naive "
            f"{rows['head']['speedup_vs_naive_best']}x",
            flush=True,
        )
    rate_end = matmul_gflops()
    print(f"fp32 GEMM at the end: {rate_end:.0f} GFLOP/s", flush=True)
    return {
        "model": str(path),
        "fp32_gemm_gflops_end": round(rate_end, 1),
        "n_params": n_params,
        "lm_head_params": head_params,
        "load_seconds": round(load_s, 2),
        "fp32_gemm_gflops": round(rate, 1),
        "target": "head-only scorer >= 3x items/s of the naive full-logits forward on the same batch",
        "workloads": results,
    }


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "note": "CPU shared with other jobs while measured; see load_average",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--gen-repeats", type=int, default=1)
    ap.add_argument("--gen-items", type=int, default=8, help="items scored by the unbatched generate() method")
    args = ap.parse_args()
    from seren.io import write_json

    info = machine()
    res = run(args.model, args.repeats, args.gen_repeats, args.gen_items)
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    res["machine"] = info
    res["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json(OUT, res)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
