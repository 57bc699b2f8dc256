"""Cognition profiles and labeling throughput, profile size and compression on synthetic data.

Builds profiles for N users (~60 events each) with the SmolLM2 tokenizer at the default 160-token
budget, then 4 labeling snapshots + labels + training data. Reports users/s, mean/p95 profile
tokens, the naive-history token count and the compression ratio (raw / profile tokens), plus
the behaviour rule's agreement with the generator's ground truth; on ml-latest-small (when
../shared/data has it) the same profile sizes and the labeled data that global vs per-user
cutoffs yield. The machine is shared with other jobs, so the load average is recorded next to
the timings.

Run: .venv/bin/python benchmarks/profiles.py [--users 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "profiles.json"


def machine() -> dict[str, object]:
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--budget", type=int, default=160)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from seren.data.synthetic import SyntheticConfig, generate
    from seren.llm.base import smollm2_tokenizer_dir
    from seren.profiles import build_profile_snapshots, build_profiles, labeling_cutoffs, load_tokenizer
    from seren.serengpt.labeling import behaviour_labels, build_labels, build_training_data, dataset_labels

    tok = load_tokenizer(smollm2_tokenizer_dir())
    ds = generate(SyntheticConfig(n_users=args.users, n_items=args.items, seed=0))
    n_events = len(ds.interactions)

    t, c = time.perf_counter(), time.process_time()
    prof = build_profiles(ds, tok, token_budget=args.budget)
    t_prof, c_prof = time.perf_counter() - t, time.process_time() - c
    m = prof.attrs["metrics"]

    t = time.perf_counter()
    snaps = build_profile_snapshots(ds, tok, labeling_cutoffs(ds.interactions, 0.8, 4), token_budget=args.budget)
    t_snap = time.perf_counter() - t
    t = time.perf_counter()
    labels = build_labels(ds, snaps)
    t_lab = time.perf_counter() - t
    t = time.perf_counter()
    td = build_training_data(labels, snaps, ds.items, tok)
    t_td = time.perf_counter() - t
    beh, gt = behaviour_labels(ds, snaps), dataset_labels(ds, snaps)
    both = beh.merge(gt, on=["user_id", "item_id", "as_of"], suffixes=("_b", "_h"))

    result: dict[str, object] = {
        "machine": machine(),
        "users": args.users,
        "interactions": n_events,
        "token_budget": args.budget,
        "tokenizer": "SmolLM2-135M-Instruct",
        "profiles_seconds": round(t_prof, 2),
        "profiles_users_per_s": round(args.users / t_prof, 1),
        "profiles_cpu_seconds": round(c_prof, 2),  # less sensitive to the shared machine's load
        "mean_profile_tokens": m["mean_profile_tokens"],
        "p95_profile_tokens": m["p95_profile_tokens"],
        "max_profile_tokens": m["max_profile_tokens"],
        "mean_raw_history_tokens": m["mean_raw_tokens"],
        "compression_ratio": m["compression_ratio"],
        "snapshots_seconds": round(t_snap, 2),
        "labels_seconds": round(t_lab, 2),
        "training_data_seconds": round(t_td, 2),
        "n_labels": int(len(labels)),
        "label_positive_rate": labels.attrs["metrics"]["positive_rate"],
        "n_sft_train": int(len(td.sft_train)),
        "n_sft_test": int(len(td.sft_test)),
        "n_eval_users": td.metrics["n_eval_users"],
        "mean_prompt_tokens": td.metrics["mean_prompt_tokens"],
        "behaviour_vs_ground_truth_agreement": round(float((both["label_b"] == both["label_h"]).mean()), 4),
        "behaviour_vs_ground_truth_overlap": int(len(both)),
    }
    ml = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-latest-small"
    if (ml / "ratings.csv").exists():
        from seren.data.movielens import load_movielens

        mds = load_movielens(ml)
        t = time.perf_counter()
        mp = build_profiles(mds, tok, token_budget=args.budget)
        t_ml = time.perf_counter() - t
        mm = mp.attrs["metrics"]
        row: dict[str, object] = {
            "users": int(mm["n_users"]),
            "profiles_seconds": round(t_ml, 2),
            "mean_profile_tokens": mm["mean_profile_tokens"],
            "mean_raw_history_tokens": mm["mean_raw_tokens"],
            "compression_ratio": mm["compression_ratio"],
        }
        for per_user in (False, True):
            snaps_ml = build_profile_snapshots(mds, tok, labeling_cutoffs(mds.interactions, 0.8, 4, per_user=per_user))
            lab_ml = build_labels(mds, snaps_ml)
            td_ml = build_training_data(lab_ml, snaps_ml, mds.items, tok)
            key = "per_user" if per_user else "global"
            row[f"{key}_cutoffs"] = {
                "n_labels": int(len(lab_ml)),
                "positive_rate": lab_ml.attrs["metrics"]["positive_rate"],
                "n_sft_train": int(len(td_ml.sft_train)),
                "n_sft_test": int(len(td_ml.sft_test)),
                "n_eval_users": td_ml.metrics["n_eval_users"],
            }
        result["movielens_small"] = row
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
