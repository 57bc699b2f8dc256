"""Nearline throughput end to end: users refreshed per minute and items scored per second, with
the share of each stage (profile building, candidate generation, Triton scoring, Feast writes).

One `run_nearline` over a synthetic event log (every user "changed": the first run), with the real
local Feast store (SQLite + parquet), the real tritonserver and the real sequence recommender, for
  - the tiny SerenGPT stand-in (2-layer random Llama, SmolLM2 tokenizer): the pipeline's own cost,
  - SmolLM2-135M exported to ONNX on Triton (fp32 CPU): what a real model costs per item,
then an incremental run (a few users with new events) on the tiny model: the steady-state latency
of one nearline tick. The exploration inputs are built here: MiniLM interest clusters, a pair table
filled by the co-occurrence baseline (the novelty LLM's table is a separate, slower build; the
nearline job only looks it up), a briefly trained sequence recommender.

The CPU is shared: the machine's load average is recorded at start and end; compare rows of one
run with each other rather than across runs.

    .venv/bin/python benchmarks/nearline.py [--users 50] [--smollm2-users 12] [--skip-smollm2] [--work DIR]
        [--candidates 20] [--quick]

SmolLM2 runs twice on the same users (issue 14): scoring="packed" (serengpt_packed, one request
row per user: the shared part once) and scoring="pair" (serengpt, one row per pair), with the
candidate slates sized to ~--candidates per user and the profile budget of the model's recipe.

Shards (issue 17; results/nearline_shards.json): plan -> S shards -> commit in process and through
kfp.local (fan-out/fan-in overhead), one SmolLM2 shard, and a projection for N Triton replicas x S:

    .venv/bin/python benchmarks/nearline.py --shards 1 4 [--users 80] [--smollm2-users 8] [--work DIR]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_inputs(work: Path, n_users: int, seed: int = 0) -> tuple[Path, Path]:
    """Synthetic dataset + published exploration outputs (clusters, pair table, seqrec)."""

    from seren.data import load_dataset, save_dataset
    from seren.data.synthetic import SyntheticConfig, generate
    from seren.exploration.clusters import build_clusters
    from seren.exploration.pair_table import TABLE_FILE, baseline_pair_table
    from seren.exploration.seqrec import train_seqrec
    from seren.exploration.transitions import build_transitions
    from seren.exploration.workflow import publish_outputs
    from seren.io import write_parquet

    data = work / "data"
    if not (data / "interactions.parquet").exists():
        save_dataset(generate(SyntheticConfig(n_users=n_users, n_items=300, seed=seed)), data)
    pub = work / "exploration"
    if (pub / "seqrec" / "model.pt").exists():
        return data, pub
    ds = load_dataset(data)
    cl = build_clusters(ds.items, n_top=4, n_sub=3, seed=seed)
    cl.save(work / "x" / "clusters")
    tr = build_transitions(ds.interactions, cl.item_to_cluster, cl.descriptions, min_count=1, test_frac=0.2)
    table = baseline_pair_table(tr, cl.ids, 3)
    write_parquet(work / "x" / "table" / TABLE_FILE, table)
    train_seqrec(ds, work / "x" / "seqrec", epochs=20, seed=seed, progress=False)
    publish_outputs(
        pub, clusters_dir=work / "x" / "clusters", table_dir=work / "x" / "table", dataset_dir=data,
        seqrec_dir=work / "x" / "seqrec",
    )  # fmt: skip
    return data, pub


def subset(data: Path, out: Path, n: int) -> Path:
    from seren.data import load_dataset, save_dataset

    if (out / "interactions.parquet").exists():
        return out
    ds = load_dataset(data)
    keep = sorted(ds.interactions["user_id"].unique())[:n]
    ds.interactions = ds.interactions[ds.interactions["user_id"].isin(keep)].reset_index(drop=True)
    for name in ("users", "labels"):
        df = getattr(ds, name)
        if df is not None:
            setattr(ds, name, df[df["user_id"].isin(keep)].reset_index(drop=True))
    save_dataset(ds, out)
    return out


def with_new_events(data: Path, out: Path, n_users: int) -> Path:
    """The log plus one click per user for `n_users` users, after the last event (the next tick)."""
    import pandas as pd

    from seren.data import load_dataset, save_dataset

    ds = load_dataset(data)
    end = pd.to_datetime(ds.interactions["timestamp"], utc=True).max()
    users = sorted(ds.interactions["user_id"].unique())[:n_users]
    items = ds.items["item_id"].astype(str).tolist()
    new = pd.DataFrame(
        {
            "user_id": users,
            "item_id": [items[(7 * i) % len(items)] for i in range(len(users))],
            "event": ["click"] * len(users),
            "rating": [float("nan")] * len(users),
            "timestamp": [end + pd.Timedelta(seconds=i + 1) for i in range(len(users))],
        }
    )
    ds.interactions = pd.concat([ds.interactions, new], ignore_index=True)
    save_dataset(ds, out)
    return out


def model_repo(model_dir: Path, out: Path) -> tuple[Path, float]:
    from serving.export import export_onnx
    from serving.model_repository import build_model_repository

    t0 = time.perf_counter()
    onnx = out / "scorer.onnx"
    if not onnx.exists() or not (out / "packed.onnx").exists():
        export_onnx(model_dir, onnx)
    repo = out / "repo"
    if not (repo / "serengpt_packed").exists():
        build_model_repository(onnx, model_dir, repo, target="local", version=1)
    return repo, time.perf_counter() - t0


def one_run(cfg: Any, store: Any) -> dict[str, Any]:
    from seren.nearline import run_nearline

    res = run_nearline(cfg, store=store)
    total = res["seconds"]
    st = res["stage_seconds"]
    other = max(0.0, total - sum(st.values()))
    return {
        "users_refreshed": res["users_refreshed"],
        "items_scored": res["items_scored"],
        "seconds": round(total, 3),
        "users_per_min": round(60 * res["users_refreshed"] / total, 2) if total else None,
        "items_per_s_end_to_end": round(res["items_scored"] / total, 3) if total else None,
        "items_per_s_triton": round(res["items_scored"] / st["scoring"], 3) if st["scoring"] else None,
        "stage_seconds": {**st, "other": round(other, 3)},
        "stage_share": {k: round(v / total, 3) for k, v in {**st, "other": other}.items()} if total else {},
    }


def bench_model(
    name: str,
    model_dir: Path,
    data: Path,
    pub: Path,
    work: Path,
    token_budget: int,
    k_main: int,
    k_explore: int,
    incremental: Path | None = None,
    batch_size: int = 64,
    timeout_s: float = 30.0,
    scoring: str = "packed",
) -> dict[str, Any]:
    from seren.nearline import NearlineConfig, open_store
    from serving.triton import TritonServer

    cached = (work / f"serving-{name}" / "repo" / "serengpt_packed").exists()
    repo, export_s = model_repo(model_dir, work / f"serving-{name}")
    feast = Path(tempfile.mkdtemp(prefix=f"feast-{name}-", dir=work))
    store = open_store("local", feast)  # Feast import + apply: once per process, not per tick
    out: dict[str, Any] = {"export_and_repository_s": None if cached else round(export_s, 1)}
    with TritonServer(repo, models=["serengpt", "serengpt_packed"], backend_dir=work / "backends") as srv:
        cfg = NearlineConfig(
            scoring=scoring,
            dataset_dir=str(data),
            triton_url=srv.http_url,
            exploration_dir=str(pub),
            model=str(model_dir),
            token_budget=token_budget,
            k_main=k_main,
            k_explore=k_explore,
            top_n=5,
            threshold=0.0,
            batch_size=batch_size,
            timeout_s=timeout_s,
            feast_data_dir=str(feast),
            judgments_dir=str(feast / "judgments"),
        )
        out["first_run_all_users"] = one_run(cfg, store)
        out["first_run_all_users"]["items_per_user"] = round(
            out["first_run_all_users"]["items_scored"] / max(1, out["first_run_all_users"]["users_refreshed"]), 1
        )
        print(name, scoring, "first run", out["first_run_all_users"], flush=True)
        if incremental is not None:
            cfg.dataset_dir = str(incremental)
            out["incremental_run"] = one_run(cfg, store)
            print(name, "incremental run", out["incremental_run"], flush=True)
    out["config"] = {
        "token_budget": token_budget,
        "k_main": k_main,
        "k_explore": k_explore,
        "batch_size": batch_size,
        "timeout_s": timeout_s,
        "scoring": scoring,
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--smollm2-users", type=int, default=12)
    ap.add_argument("--skip-smollm2", action="store_true")
    ap.add_argument("--work", default=None, help="Working dir (kept: a re-run reuses the inputs and exports).")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "nearline.json"))
    ap.add_argument(
        "--candidates", type=int, default=20, help="SmolLM2: candidates per user (main + explore + serendipity source)"
    )
    ap.add_argument("--token-budget", type=int, default=None, help="default: the model recipe's profile budget")
    ap.add_argument("--quick", action="store_true", help="12 users, 2 SmolLM2 users, 8 candidates")
    args = ap.parse_args()
    if args.quick:
        args.users, args.smollm2_users, args.candidates = 12, 2, 8

    import torch

    from seren.io import write_json
    from seren.llm.base import make_tiny_model, resolve_base_model

    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks._machine import Quiet

    quiet = Quiet("nearline").start()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="nearline-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SEREN_HOME", str(work / "home"))
    t0 = time.perf_counter()
    data, pub = build_inputs(work, args.users)
    inputs_s = time.perf_counter() - t0
    print(f"inputs ready in {inputs_s:.1f}s ({work})", flush=True)
    tiny = work / "tiny"
    if not (tiny / "config.json").exists():
        make_tiny_model(tiny, seed=0)
    results: dict[str, Any] = {
        "tiny": bench_model(
            "tiny", tiny, data, pub, work, 64, 20, 10, incremental=with_new_events(data, work / "data_next", 5)
        )
    }
    if not args.skip_smollm2:
        small = subset(data, work / f"data_{args.smollm2_users}", args.smollm2_users)
        from seren.nearline.candidates import NEARLINE_POOL

        # nearline scores main + exploration + NEARLINE_POOL serendipity-source items per user
        slates = max(2, args.candidates - NEARLINE_POOL)
        k_main = (slates + 1) // 2
        k_explore = slates - k_main
        for mode in ("packed", "pair"):
            results[f"smollm2_{mode}"] = bench_model(
                "smollm2", resolve_base_model("smollm2"), small, pub, work, args.token_budget, k_main, k_explore,
                batch_size=args.candidates, timeout_s=900, scoring=mode,
            )  # fmt: skip
        pk, pr = (results[f"smollm2_{m}"]["first_run_all_users"] for m in ("packed", "pair"))
        results["smollm2_packed_over_pair"] = {
            "users_per_min": round(pk["users_per_min"] / pr["users_per_min"], 2),
            "items_per_s_triton": round(pk["items_per_s_triton"] / pr["items_per_s_triton"], 2),
        }
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "what": "one nearline run (all users changed) through real Feast (local), Triton and the sequence recommender",
        "dataset": {"synthetic_users": args.users, "items": 300, "smollm2_users": args.smollm2_users},
        "quick": bool(args.quick),
        "inputs_build_s": round(inputs_s, 1),
        "results": results,
        "notes": [
            "users_per_min / items_per_s_end_to_end: the whole run (dataset load .. watermark), Feast opened beforehand",
            "items_per_s_triton: items / the scoring stage (HTTP, sequential: packed = one request per user, "
            "pair = batches of --candidates pairs)",
            "smollm2_packed / smollm2_pair: the same users and candidates, serengpt_packed vs serengpt",
            "SmolLM2 on this CPU needs a client timeout above one batch's time (a 64-item batch ran past 30 s)",
            "export_and_repository_s: null when the ONNX export was reused from an earlier run of --work",
            "stage_share 'other': dataset load, changed-user detection, top-N, judgments, watermark",
            "pair table: co-occurrence baseline (same columns as the novelty LLM table); clusters: MiniLM",
        ],
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            **quiet.stop(),
        },
    }
    write_json(args.out, report)
    print(f"wrote {args.out}")


# ---------------------------------------------------------------- shards (issue 17): --shards


def _shard_run(cfg: Any, n_shards: int) -> dict[str, Any]:
    """plan -> every shard -> commit in this process (the work of one pipeline run, no KFP)."""
    from seren.nearline import open_store
    from seren.nearline.shard import commit_window, plan_window, run_shard

    store = open_store("local", cfg.feast_data_dir)
    t0 = time.perf_counter()
    window = plan_window(cfg, n_shards, store=store)
    shards = [run_shard(cfg, window, s, store=store) for s in range(n_shards)]
    res = commit_window(cfg, window, shards, store=store)
    wall = time.perf_counter() - t0
    per = []
    for r in shards:
        busy = r["seconds"]
        scoring = r["stage_seconds"]["scoring"]
        per.append(
            {
                "shard": r["shard"],
                "users": r["users_refreshed"],
                "items": r["items_scored"],
                "seconds": busy,
                "scoring_s": scoring,
                "users_per_min": r["users_per_min"],
                "non_scoring_s_per_user": round((busy - scoring) / r["users_refreshed"], 4)
                if r["users_refreshed"]
                else None,
            }
        )
    return {"shards": n_shards, "wall_s": round(wall, 3), "users_refreshed": res["users_refreshed"],
            "items_scored": res["items_scored"], "per_shard": per}  # fmt: skip


def _kfp_run(cfg: Any, n_shards: int, root: Path) -> dict[str, Any]:
    """The nearline pipeline through kfp.local: plan -> ParallelFor(shards) -> Collected -> commit."""
    import pipelines as P

    params = {
        "dataset_dir": cfg.dataset_dir, "triton_url": cfg.triton_url, "exploration_dir": cfg.exploration_dir,
        "model": cfg.model, "token_budget": cfg.token_budget, "k_main": cfg.k_main, "k_explore": cfg.k_explore,
        "top_n": cfg.top_n, "threshold": cfg.threshold, "batch_size": cfg.batch_size, "feast_target": "local",
        "feast_data_dir": cfg.feast_data_dir, "judgments_dir": cfg.judgments_dir, "shards": n_shards,
    }  # fmt: skip
    t0 = time.perf_counter()
    res = P.run_local("nearline", params, pipeline_root=root)
    wall = time.perf_counter() - t0
    shard_s = [t["parameters"]["Output"]["seconds"] for n, t in res["tasks"].items() if "nearline-shard" in n]
    return {"shards": n_shards, "wall_s": round(wall, 3), "shard_task_seconds": shard_s}


def shards_main() -> None:
    """Per-shard throughput, the fan-out/fan-in overhead of kfp.local, and a projection for
    N Triton replicas x S shards (written as such: computed from the measured per-shard figures)."""
    ap = argparse.ArgumentParser(description="nearline shards: per-shard throughput, kfp.local overhead, projection")
    ap.add_argument("--shards", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--users", type=int, default=80)
    ap.add_argument("--work", default=None)
    ap.add_argument("--replica-items-per-s", type=float, default=None,
                    help="SmolLM2 items/s of one Triton replica (default: results/nearline.json smollm2 figure)")  # fmt: skip
    ap.add_argument("--candidates-per-user", type=int, default=8)
    ap.add_argument("--smollm2-users", type=int, default=0, help="also time one SmolLM2 shard of N users (r measured)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "nearline_shards.json"))
    args = ap.parse_args()
    import json

    import torch

    from seren.io import write_json
    from seren.llm.base import make_tiny_model
    from seren.nearline import NearlineConfig
    from serving.triton import TritonServer

    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks._machine import Quiet

    quiet = Quiet("nearline_shards").start()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="nearline-shards-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SEREN_HOME", str(work / "home"))
    data, pub = build_inputs(work, args.users)
    tiny = work / "tiny"
    if not (tiny / "config.json").exists():
        make_tiny_model(tiny, seed=0)
    repo, _ = model_repo(tiny, work / "serving-tiny")
    library, kfp = [], []
    with TritonServer(repo, models=["serengpt"], backend_dir=work / "backends") as srv:
        for n in args.shards:
            for kind, out in (("lib", library), ("kfp", kfp)):
                feast = Path(tempfile.mkdtemp(prefix=f"feast-{kind}{n}-", dir=work))
                cfg = NearlineConfig(
                    dataset_dir=str(data), triton_url=srv.http_url, exploration_dir=str(pub), model=str(tiny),
                    token_budget=64, k_main=5, k_explore=3, top_n=5, threshold=0.0, batch_size=64,
                    feast_data_dir=str(feast), feast_target="local", judgments_dir=str(feast / "judgments"),
                )  # fmt: skip
                r = _shard_run(cfg, n) if kind == "lib" else _kfp_run(cfg, n, work / f"kfp{n}")
                r["load_avg_1m"] = round(os.getloadavg()[0], 2)
                out.append(r)
                print(kind, n, {k: v for k, v in r.items() if k != "per_shard"}, flush=True)
    smollm2 = None
    if args.smollm2_users:
        from seren.llm.base import resolve_base_model

        small = subset(data, work / f"data_{args.smollm2_users}", args.smollm2_users)
        big = Path(resolve_base_model("smollm2"))
        repo2, _ = model_repo(big, work / "serving-smollm2")
        with TritonServer(repo2, models=["serengpt"], backend_dir=work / "backends") as srv:
            feast = Path(tempfile.mkdtemp(prefix="feast-smollm2-", dir=work))
            cfg = NearlineConfig(
                dataset_dir=str(small), triton_url=srv.http_url, exploration_dir=str(pub), model=str(big),
                token_budget=64, k_main=5, k_explore=3, top_n=5, threshold=0.0, batch_size=8, timeout_s=900,
                feast_data_dir=str(feast), feast_target="local", judgments_dir=str(feast / "judgments"),
            )  # fmt: skip
            smollm2 = _shard_run(cfg, 1)
            smollm2["load_avg_1m"] = round(os.getloadavg()[0], 2)
            (one,) = smollm2["per_shard"]
            smollm2["items_per_s_triton"] = round(one["items"] / one["scoring_s"], 3)
            print("smollm2 shard", smollm2, flush=True)
    overhead = [
        {"shards": k["shards"], "kfp_wall_s": k["wall_s"], "in_process_wall_s": lib["wall_s"],
         "fan_out_fan_in_overhead_s": round(k["wall_s"] - lib["wall_s"], 2)}
        for k, lib in zip(kfp, library, strict=True)
    ]  # fmt: skip
    # projection inputs: the pipeline's own per-user cost (tiny model: scoring is negligible) and
    # one SmolLM2 replica's measured scoring rate
    per_user = [p["non_scoring_s_per_user"] for r in library for p in r["per_shard"] if p["non_scoring_s_per_user"]]
    c_user = sum(per_user) / len(per_user)
    src = "--replica-items-per-s"
    rate = args.replica_items_per_s
    if rate is None and smollm2 is not None:
        rate = smollm2["items_per_s_triton"]
        src = "measured here: one SmolLM2 shard on one Triton replica (smollm2_shard)"
    if rate is None:
        prev = json.loads((ROOT / "benchmarks" / "results" / "nearline.json").read_text())
        row = prev["results"].get("smollm2_packed") or prev["results"]["smollm2"]  # packed since issue 14
        rate = row["first_run_all_users"]["items_per_s_triton"]
        src = f"benchmarks/results/nearline.json smollm2 items_per_s_triton (measured {prev.get('date')})"
    k = args.candidates_per_user
    grid = []
    for n_rep in (1, 4, 16, 64):
        for s in (1, 4, 16, 64):
            shard_cap = 60.0 * s / (c_user + k / rate * max(1.0, s / n_rep))  # shards share the replicas
            grid.append({"triton_replicas": n_rep, "shards": s, "users_per_min": round(shard_cap, 1)})
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "what": "sharded nearline (plan -> S shards -> commit): per-shard throughput in process and through kfp.local",
        "dataset": {"synthetic_users": args.users, "items": 300, "model": "tiny SerenGPT stand-in on Triton"},
        "in_process": library,
        "kfp_local": kfp,
        "smollm2_shard": smollm2,
        "fan_out_fan_in": overhead,
        "projection": {
            "kind": "PROJECTION from measured per-shard figures, not a measurement of a cluster",
            "formula": "users/min = 60*S / (c_user + k/r * max(1, S/N)): S shards each pay the pipeline cost "
            "c_user per user; k candidates per user are scored by N replicas at r items/s each, "
            "a replica shared by S/N shards when S > N",
            "c_user_s": round(c_user, 4),
            "k_candidates_per_user": k,
            "r_items_per_s_per_replica": rate,
            "r_source": src,
            "grid": grid,
        },
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            **quiet.stop(),
        },  # fmt: skip
        "notes": [
            "kfp.local runs at most 2 loop iterations at once and starts a Python subprocess per task",
            "fan_out_fan_in_overhead_s: kfp.local wall minus the same plan/shards/commit in one process",
            "a million changed users/day = 694 users/min",
        ],
    }
    write_json(args.out, report)
    print(json.dumps(report["projection"], indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if "--shards" in sys.argv:
        shards_main()
    else:
        main()
