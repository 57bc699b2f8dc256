"""The end-to-end demo behind `make demo`: every stage runs for real, locally, in order.

features -> SerenGPT training (+ export/validate/register/deploy when those steps are in the
pipeline) -> exploration -> the model served on the local Triton and queried. Each pipeline runs
through kfp.local exactly as `seren pipeline run NAME --local` does; `quick` swaps SmolLM2 for
the tiny random model and shrinks data and budgets so the whole path runs in a few minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seren.paths import seren_home

Say = Callable[[str], None]

# Sizes and budgets: (full, quick). Only the keys a pipeline declares are passed to it.
PROFILES: dict[str, dict[str, Any]] = {
    "full": {"n_users": 300, "n_items": 400, "seed": 0, "base_model": "smollm2"},
    "quick": {
        "n_users": 80,
        "n_items": 160,
        "seed": 0,
        "sft_steps": 4,
        "pref_steps": 2,
        "max_steps": 4,
        "seqrec_epochs": 3,
        "n_top": 4,
        "n_sub": 3,
        "label_frac": 0.4,
    },
}


def _params_for(name: str, wanted: dict[str, Any]) -> dict[str, Any]:
    import pipelines

    declared = pipelines.load(name).parameter_types()
    return {k: v for k, v in wanted.items() if k in declared}


def _run(name: str, wanted: dict[str, Any], say: Say) -> dict[str, Any]:
    import pipelines

    params = _params_for(name, wanted)
    say(f"\n== pipeline {name} ({', '.join(f'{k}={v}' for k, v in params.items())})")
    t0 = time.monotonic()

    def on_event(kind: str, task: str, detail: str) -> None:
        if kind in ("start", "done", "failed"):
            say(f"   {kind:6s} {task} {detail}".rstrip())

    res = pipelines.run_local(name, params, on_event=on_event)
    res["seconds"] = round(time.monotonic() - t0, 1)
    say(f"   finished in {res['seconds']} s; run dir {res['run_dir']}")
    return res


def _artifact_path(res: dict[str, Any], key: str) -> Path | None:
    out = res.get("outputs", {}).get(key)
    if isinstance(out, dict) and out.get("path"):
        return Path(out["path"])
    return None


def run_demo(quick: bool = False, say: Say = print) -> dict[str, Any]:
    """Run every stage; returns a summary (also written to SEREN_HOME/demo/summary.json)."""
    from seren.io import write_json

    wanted = dict(PROFILES["quick" if quick else "full"])
    if quick:
        from seren.llm.base import make_tiny_model

        wanted["base_model"] = str(make_tiny_model(seren_home() / "models" / "tiny", seed=0))
    t0 = time.monotonic()
    summary: dict[str, Any] = {"mode": "quick" if quick else "full", "seren_home": str(seren_home())}

    feats = _run("features", wanted, say)
    summary["features"] = {"dataset": str(_artifact_path(feats, "dataset")), "run_dir": feats["run_dir"]}

    train = _run("serengpt_training", wanted, say)
    model_dir = _artifact_path(train, "model")
    report = _artifact_path(train, "report")
    summary["serengpt"] = {"model": str(model_dir), "report": str(report), "run_dir": train["run_dir"]}
    if report is not None and report.exists():
        say("\n== SerenGPT ablation (held-out users)\n" + report.read_text())

    explore = _run("exploration", wanted, say)
    ex_report = _artifact_path(explore, "report")
    summary["exploration"] = {
        "table": str(_artifact_path(explore, "table")),
        "report": str(ex_report),
        "run_dir": explore["run_dir"],
    }
    if ex_report is not None and ex_report.exists():
        say("\n== Interest exploration\n" + ex_report.read_text())

    if model_dir is not None and model_dir.exists():
        summary["serving"] = _serve_and_query(model_dir, Path(summary["features"]["dataset"]), say)

    summary["seconds"] = round(time.monotonic() - t0, 1)
    out = write_json(seren_home() / "demo" / "summary.json", summary)
    say(f"\n== done in {summary['seconds']} s; summary {out}")
    return summary


def _serve_and_query(model_dir: Path, dataset_dir: Path, say: Say) -> dict[str, Any]:
    """Serve the trained model on the real local Triton and score a few users' candidates."""
    from seren.data import load_dataset
    from seren.llm.base import load_causal_lm
    from seren.profiles import build_profiles
    from seren.registry.config import load_environments
    from serving.client import SerenClient
    from serving.export import export_onnx
    from serving.model_repository import build_model_repository
    from serving.triton import TritonServer

    # The training pipeline deploys a validated model to dev; serve that repository. When the
    # validation gate stopped the deploy, build a repository from the trained model instead.
    repo = load_environments().env("dev").model_repository
    onnx_path: Path | None = None
    if (repo / "serengpt").is_dir():
        say(f"\n== serving the dev environment's repository {repo} on tritonserver")
    else:
        say("\n== no dev deployment (validation gate closed?): export ONNX and build a repository")
        repo = seren_home() / "triton" / "model_repository"
        onnx_path = export_onnx(model_dir, seren_home() / "serving" / "scorer.onnx")
        build_model_repository(onnx_path, model_dir, repo, target="local")
    ds = load_dataset(dataset_dir)
    _, tok = load_causal_lm(model_dir)
    users = sorted(ds.interactions["user_id"].unique())[:3]
    profiles = build_profiles(ds, tok, users=users).set_index("user_id")
    items = ds.items.set_index("item_id")
    seen = set(ds.interactions["item_id"])
    cands = [i for i in items.index if i not in seen][:4] or list(items.index[:4])
    results: dict[str, Any] = {}
    with TritonServer(repo, models=["serengpt"]) as server:
        client = SerenClient(server.http_url)
        for u in users:
            scores = client.score([profiles.loc[u, "profile_text"]] * len(cands), [items.loc[i, "text"] for i in cands])
            results[u] = {i: round(float(s), 4) for i, s in zip(cands, scores, strict=True)}
            say(f"   {u}: " + ", ".join(f"{items.loc[i, 'title']} -> {s:.3f}" for i, s in results[u].items()))
        url = server.http_url
    say(f"   served at {url} (stopped with the demo; `seren serve {repo}` serves it again)")
    return {"model_repository": str(repo), "onnx": str(onnx_path or ""), "sample_scores": results, "url": url}
