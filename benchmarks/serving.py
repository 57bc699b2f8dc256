"""Serving throughput: Triton (dynamic batching) vs in-process torch and ONNX Runtime, one run.

Scores (profile, item) pairs with SmolLM2-135M (fp32, CPU) through:
  - torch eager, one request per item (SerenScorer.score on a single pair) - the naive service,
  - torch batched with shared-prefix reuse (SerenScorer.score, batch 16) - for reference,
  - ONNX Runtime in-process, batched (the exported graph, batch 16),
  - Triton `serengpt` ensemble over gRPC, one item per request, at concurrency 1, 8 and 32
    (the dynamic batcher groups concurrent requests; the python scorer re-pads them into one
    ORT call),
plus the FLOP-based limit for this CPU: 2 x params x prompt tokens per item at the measured
fp32 matmul rate. Targets: Triton@32 >= 2x per-request torch eager items/s, and >= 1/1.5 of
in-process ORT batch throughput. Numbers are printed and written to benchmarks/results/serving.json
with the machine (and its load average: other work on the box slows every row alike).

    .venv/bin/python benchmarks/serving.py [--model smollm2] [--quick]

Load test (issue 14; results/serving_load.json): `wrk` (Debian package, an established HTTP load
generator) POSTs Triton's KServe-v2 JSON to the old per-pair ensemble (`serengpt`: one request = one
user's 20 pairs) and the new multi-candidate one (`serengpt_packed`: one request = one user's row of
20 candidates) at concurrency 1, 4 and 16; requests/s, items/s and wrk's p50/p99 latency:

    .venv/bin/python benchmarks/serving.py --load-test [--model smollm2] [--duration 40] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def workload(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """n (profile, item) pairs: 8 users' profiles x the synthetic catalogue's item texts."""
    from seren.data.synthetic import SyntheticConfig, generate
    from seren.llm.base import smollm2_tokenizer_dir
    from seren.profiles import build_profiles
    from seren.profiles.text import item_text, load_tokenizer

    ds = generate(SyntheticConfig(n_users=40, n_items=200, seed=seed))
    users = sorted(ds.interactions["user_id"].unique())[:8]
    prof = build_profiles(ds, load_tokenizer(smollm2_tokenizer_dir()), token_budget=160, users=list(users))
    texts = item_text(ds.items).tolist()
    rng = np.random.default_rng(seed)
    p = prof["profile_text"].tolist()
    return [p[i % len(p)] for i in range(n)], [texts[j] for j in rng.choice(len(texts), n, replace=False)]


def matmul_gflops(n: int = 1024, reps: int = 10) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def summarize(lat_s: list[float], n_items: int, wall: float) -> dict:
    ms = np.asarray(lat_s) * 1000
    return {
        "items": n_items,
        "items_per_s": round(n_items / wall, 3),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def bench_torch_eager(scorer, profiles: list[str], items: list[str]) -> dict:
    scorer.score(profiles[0], [items[0]])  # warm-up
    lat = []
    t0 = time.perf_counter()
    for p, i in zip(profiles, items, strict=True):
        s = time.perf_counter()
        scorer.score(p, [i])
        lat.append(time.perf_counter() - s)
    return summarize(lat, len(items), time.perf_counter() - t0)


def bench_batched(fn, profiles: list[str], items: list[str], batch: int) -> dict:
    fn(profiles[:batch], items[:batch])  # warm-up
    lat = []
    t0 = time.perf_counter()
    for s in range(0, len(items), batch):
        t = time.perf_counter()
        fn(profiles[s : s + batch], items[s : s + batch])
        lat.append(time.perf_counter() - t)
    out = summarize(lat, len(items), time.perf_counter() - t0)
    out["batch"] = batch
    out["latency_is_per"] = "batch"
    return out


def bench_triton(url: str, profiles: list[str], items: list[str], concurrency: int) -> dict:
    """Closed loop: `concurrency` clients, one item per request, until every pair is scored."""
    from serving.client import SerenClient

    clients = [SerenClient(url, "grpc", timeout=600) for _ in range(concurrency)]
    clients[0].score(profiles[0], [items[0]])  # warm-up
    lock = threading.Lock()
    nxt = [0]
    lat: list[float] = []

    def worker(c: SerenClient) -> None:
        while True:
            with lock:
                k = nxt[0]
                nxt[0] += 1
            if k >= len(items):
                return
            t = time.perf_counter()
            c.score(profiles[k], [items[k]])
            with lock:
                lat.append(time.perf_counter() - t)

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in clients:
        c.close()
    out = summarize(lat, len(items), wall)
    out["concurrency"] = concurrency
    return out


_WRK_LUA = r"""
local f = assert(io.open("%(body)s", "r"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKJSON {\"requests\": %%d, \"errors\": %%d, \"non_2xx\": %%d, \"p50_us\": %%d, "
    .. "\"p99_us\": %%d, \"duration_us\": %%d}\n", summary.requests, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(99), summary.duration))
end
"""


def infer_body(model: str, profile: str, items: list[str]) -> dict:
    """KServe-v2 JSON for one user: per-pair ensemble [n,1] x 2, packed ensemble [1,1] + [1,n]."""
    n = len(items)
    if model == "serengpt_packed":
        shapes = ([1, 1], [1, n])
        data = ([profile], items)
    else:
        shapes = ([n, 1], [n, 1])
        data = ([profile] * n, items)
    inputs = [
        {"name": name, "shape": shape, "datatype": "BYTES", "data": d}
        for name, shape, d in zip(("PROFILE_TEXT", "ITEM_TEXT"), shapes, data, strict=True)
    ]
    return {"inputs": inputs, "outputs": [{"name": "SCORE"}]}


def warm_request(url: str, model: str, body: dict, repeats: int = 2) -> float:
    """Seconds of one request (after a first, untimed one): sizes each point's duration."""
    import json
    import urllib.request

    req = urllib.request.Request(
        f"http://{url}/v2/models/{model}/infer",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    for _ in range(repeats):
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=600) as resp:
            resp.read()
    return time.perf_counter() - t


def run_wrk(url: str, model: str, body: dict, concurrency: int, duration: int, work: Path) -> dict:
    """One wrk run at `concurrency` open connections; its own latency percentiles."""
    import json
    import shutil
    import subprocess

    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("error: wrk is not installed. Fix: apt-get install wrk")
    body_path = work / f"body-{model}.json"
    body_path.write_text(json.dumps(body))
    lua = work / f"wrk-{model}.lua"
    lua.write_text(_WRK_LUA % {"body": body_path})
    cmd = [wrk, "-t", str(min(2, concurrency)), "-c", str(concurrency), "-d", f"{duration}s", "--timeout", "600s",
           "-s", str(lua), f"http://{url}/v2/models/{model}/infer"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRKJSON "))
    r = json.loads(line.removeprefix("WRKJSON "))
    secs = r["duration_us"] / 1e6
    n_items = len(body["inputs"][1]["data"])
    return {
        "concurrency": concurrency,
        "requests": r["requests"],
        "errors": r["errors"],
        "non_2xx": r["non_2xx"],
        "requests_per_s": round(r["requests"] / secs, 3),
        "items_per_s": round(r["requests"] * n_items / secs, 3),
        "latency_ms_p50": round(r["p50_us"] / 1000, 1),
        "latency_ms_p99": round(r["p99_us"] / 1000, 1),
        "duration_s": round(secs, 1),
    }


def load_test(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description="wrk load test of serengpt vs serengpt_packed")
    ap.add_argument("--load-test", action="store_true")
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--duration", type=int, default=40, help="seconds per (ensemble, concurrency)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--quick", action="store_true", help="tiny model, 5 s per point")
    ap.add_argument("--work", default=None)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serving_load.json"))
    args = ap.parse_args(argv)
    from seren.io import write_json
    from seren.llm.base import make_tiny_model, resolve_base_model
    from serving.export import export_onnx
    from serving.model_repository import build_model_repository
    from serving.triton import TritonServer

    sys.path.insert(0, str(ROOT))
    from benchmarks._machine import Quiet

    quiet = Quiet("serving_load").start()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="seren-bench-load-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.quick:
        model_dir = work / "tiny"
        if not (model_dir / "config.json").exists():
            make_tiny_model(model_dir)
        args.duration = 5
    else:
        model_dir = resolve_base_model(args.model)
    if not (work / "repo" / "serengpt_packed").exists():
        export_onnx(model_dir, work / "scorer.onnx")
        build_model_repository(work / "scorer.onnx", model_dir, work / "repo", target="local")
    profiles, items = workload(args.candidates)
    results: dict[str, list[dict]] = {}
    with TritonServer(
        work / "repo",
        models=["serengpt", "serengpt_packed"],
        log_file=work / "tritonserver.log",
        backend_dir=work / "backends",
        startup_timeout=300,
    ) as srv:
        for model in ("serengpt_packed", "serengpt"):
            body = infer_body(model, profiles[0], items)
            one = warm_request(srv.http_url, model, body)
            results[model] = []
            for c in args.concurrency:
                # At least 1.5 requests per connection: a shorter point would count only the
                # first wave (a per-pair request of 20 items takes seconds; 16 of them queue).
                secs = max(args.duration, int(1.5 * c * one) + 1)
                r = run_wrk(srv.http_url, model, body, c, secs, work)
                r["single_request_s"] = round(one, 3)
                # wrk stops with up to `c` requests still queued in Triton: drain them (one more
                # request waits behind them) so they do not run into the next point
                warm_request(srv.http_url, model, body, repeats=1)
                results[model].append(r)
                print(model, r, flush=True)
    ratio = {
        str(a["concurrency"]): round(a["items_per_s"] / b["items_per_s"], 2) if b["items_per_s"] else None
        for a, b in zip(results["serengpt_packed"], results["serengpt"], strict=True)
    }
    report = {
        "what": "wrk (HTTP/JSON, KServe v2) against the local tritonserver: one request = one user's candidates",
        "model": str(model_dir),
        "candidates_per_request": args.candidates,
        "duration_s_per_point_min": args.duration,
        "results": results,
        "packed_over_pair_items_per_s": ratio,
        "notes": [
            "wrk counts requests completed within the duration; a request in flight at the end is not counted",
            "latency percentiles are wrk's (per request, i.e. per user of --candidates items)",
            "each point runs max(--duration, 1.5 x concurrency x one warm request's time) seconds",
        ],
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "quiet": quiet.stop(),
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(args.out, report)
    print(f"packed / per-pair items/s by concurrency: {ratio}\nwrote {args.out}")


def main() -> None:
    if "--load-test" in sys.argv[1:]:
        load_test(sys.argv[1:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2", help="base/SerenGPT model name or dir (default smollm2)")
    ap.add_argument("--quick", action="store_true", help="fewer items (smoke run)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serving.json"))
    args = ap.parse_args()

    import torch

    from seren.io import write_json
    from seren.llm.base import resolve_base_model
    from seren.llm.scorer import SerenScorer
    from serving.export import export_onnx
    from serving.model_repository import build_model_repository
    from serving.triton import TritonServer
    from serving.triton_models.scorer.model import OnnxScorer

    load0 = os.getloadavg()
    # Sized for a 2-core box (SmolLM2 scores ~1 item/s there at best); --quick for a smoke run.
    n_eager, n_torch_batch, n_batch, n_c = (
        (3, 8, 16, {1: 3, 8: 16, 32: 32}) if args.quick else (6, 16, 32, {1: 6, 8: 24, 32: 64})
    )
    model_dir = resolve_base_model(args.model)
    work = Path(tempfile.mkdtemp(prefix="seren-bench-serving-"))
    print(f"model {model_dir}\nworkdir {work}", flush=True)

    t = time.perf_counter()
    onnx_path = export_onnx(model_dir, work / "scorer.onnx")
    export_s = time.perf_counter() - t
    print(f"export {export_s:.1f}s", flush=True)

    profiles, items = workload(max(n_batch, max(n_c.values()), n_eager))
    scorer = SerenScorer.from_pretrained(model_dir)
    n_params = sum(p.numel() for p in scorer.model.parameters())
    n_embed = scorer.model.get_input_embeddings().weight.numel()
    ids, mask = scorer.encode(profiles, items)
    tokens = float(mask.sum(1).float().mean())

    results: dict[str, dict] = {}
    with torch.inference_mode():
        results["torch_eager_per_request"] = bench_torch_eager(scorer, profiles[:n_eager], items[:n_eager])
        print("torch eager per request", results["torch_eager_per_request"], flush=True)
        results["torch_batched_shared_prefix"] = bench_batched(
            lambda p, i: scorer.score(p, i, batch_size=8), profiles[:n_torch_batch], items[:n_torch_batch], 8
        )
        print("torch batched (prefix reuse)", results["torch_batched_shared_prefix"], flush=True)
    ort = OnnxScorer(onnx_path)

    def ort_fn(p: list[str], i: list[str]) -> np.ndarray:
        a, m = scorer.encode(p, i)
        return ort(a.numpy(), m.numpy())

    results["onnxruntime_batched"] = bench_batched(ort_fn, profiles[:n_batch], items[:n_batch], 16)
    print("onnxruntime batched", results["onnxruntime_batched"], flush=True)
    del ort_fn

    repo = build_model_repository(onnx_path, model_dir, work / "repo", target="local")
    with TritonServer(
        repo,
        models=["serengpt", "serengpt_packed"],
        log_file=work / "tritonserver.log",
        backend_dir=work / "backends",
        startup_timeout=300,
    ) as srv:
        for c, n in n_c.items():
            results[f"triton_c{c}"] = bench_triton(srv.grpc_url, profiles[:n], items[:n], c)
            print(f"triton concurrency {c}", results[f"triton_c{c}"], flush=True)

    gflops = matmul_gflops()
    flop_item = 2 * n_params * tokens
    flop_item_no_embed = 2 * (n_params - n_embed) * tokens  # embedding lookup is not a matmul; head is 2 rows
    eager = results["torch_eager_per_request"]["items_per_s"]
    ort_b = results["onnxruntime_batched"]["items_per_s"]
    tri = results["triton_c32"]["items_per_s"]
    report = {
        "model": str(model_dir.name),
        "params": n_params,
        "mean_prompt_tokens": round(tokens, 1),
        "export_onnx_s": round(export_s, 1),
        "results": results,
        "cpu_limit": {
            "matmul_gflops_fp32": round(gflops, 1),
            "flop_per_item_2_params_tokens": flop_item,
            "items_per_s_limit": round(gflops * 1e9 / flop_item, 3),
            "items_per_s_limit_without_embedding": round(gflops * 1e9 / flop_item_no_embed, 3),
        },
        "targets": {
            "triton_c32_vs_torch_eager": round(tri / eager, 2),
            "triton_c32_ge_2x_torch_eager": bool(tri >= 2 * eager),
            "ort_batch_vs_triton_c32": round(ort_b / tri, 2),
            "triton_c32_within_1_5x_of_ort_batch": bool(ort_b <= 1.5 * tri),
        },
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "loadavg_start": [round(x, 2) for x in load0],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
        },
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(args.out, report)
    print("\n".join(f"{k}: {v}" for k, v in report["targets"].items()))
    print(f"cpu limit {report['cpu_limit']}\nwrote {args.out}")


if __name__ == "__main__":
    main()
