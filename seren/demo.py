"""The end-to-end demo behind `make demo`: every stage runs for real, locally, in order.

features -> SerenGPT training (+ export/validate/register/deploy to dev) -> the dev model served on
the local Triton -> exploration -> nearline (scores on that Triton, pushes to Feast) -> monitoring
(Evidently drift vs the validation reference; a failed gate retrains) -> `seren recommend` for three
users from the online store, then a summary of where everything is. Each pipeline runs
through kfp.local exactly as `seren pipeline run NAME --local` does; `quick` swaps SmolLM2 for
the tiny random model and shrinks data and budgets so the whole path runs in a few minutes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from seren.paths import (
    demo_dir,
    features_dir,
    models_dir,
    pipeline_runs_dir,
    reports_dir,
    seren_home,
    serving_dir,
    triton_model_repository,
)

Say = Callable[[str], None]

# Sizes and budgets: (full, quick). Only the keys a pipeline declares are passed to it.
PROFILES: dict[str, dict[str, Any]] = {
    # SmolLM2 on 2 CPU cores: LoRA on the top 8 blocks and small batches.
    "full": {
        "n_users": 300,
        "n_items": 400,
        "seed": 0,
        "base_model": "smollm2",
        "push_to_feast": True,
        # the quality benchmark's recipe (benchmarks/serengpt_quality.py): 144 SFT steps at lr 3e-3,
        # affordable since SFT trains the top blocks from cached hidden states (~1 s/step here)
        "lora_layers": 8,
        "sft_steps": 144,
        "sft_learning_rate": 0.003,
        "batch_size": 4,
        "pref_steps": 8,
        "pref_learning_rate": 0.0005,
        "pref_batch_size": 4,
        # exploration: 12 clusters (144 pairs) and a 60-step novelty fine-tune (~3-6 CPU-min; the
        # 24-cluster, 120-step setting of benchmarks/novelty_quality.py takes ~15 min here)
        "n_top": 4,
        "n_sub": 3,
        "max_steps": 60,
    },
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
        "push_to_feast": True,
    },
}
# The nearline step: SmolLM2 on this CPU's Triton scores ~1 item/s, so the full demo refreshes the users
# active in the data's last hour with short slates; the tiny random model scores everything near 0.44,
# so quick keeps the top-N regardless of the threshold (plumbing, not quality).
NEARLINE: dict[str, dict[str, Any]] = {
    "full": {"initial_lookback": "1h", "k_main": 10, "k_explore": 3, "top_n": 5, "batch_size": 8, "timeout_s": 600.0},
    "quick": {"initial_lookback": "1d", "k_main": 10, "k_explore": 3, "top_n": 5, "threshold": 0.0},
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

    from seren.progress import Display

    line = Display()

    def on_event(kind: str, task: str, detail: str) -> None:
        if kind == "progress":  # training steps: "sft 12/144  loss 0.41  ETA 3m05s" on one live line
            line.update(task, detail)
        elif kind in ("start", "done", "failed"):
            line.stop()
            say(f"   {kind:6s} {task} {detail}".rstrip())

    try:
        res = pipelines.run_local(name, params, on_event=on_event)
    finally:
        line.stop()
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

        wanted["base_model"] = str(make_tiny_model(models_dir() / "tiny", seed=0))
    t0 = time.monotonic()
    summary: dict[str, Any] = {"mode": "quick" if quick else "full", "seren_home": str(seren_home())}

    feats = _run("features", wanted, say)
    summary["features"] = {"dataset": str(_artifact_path(feats, "dataset")), "run_dir": feats["run_dir"]}

    train = _run("serengpt_training", wanted, say)
    model_dir = _artifact_path(train, "model")
    report = _artifact_path(train, "report")
    summary["serengpt"] = {"model": str(model_dir), "report": str(report), "run_dir": train["run_dir"]}

    dataset = Path(summary["features"]["dataset"])
    with contextlib.ExitStack() as stack:
        if model_dir is not None and model_dir.exists():
            serving = stack.enter_context(_served(model_dir, dataset, say))
            summary["serving"] = serving
        else:
            serving = None
            say("\n== no trained model: serving, nearline and monitoring are skipped")

        explore = _run("exploration", wanted, say)
        ex_report = _artifact_path(explore, "report")
        summary["exploration"] = {
            "table": str(_artifact_path(explore, "table")),
            "report": str(ex_report),
            "run_dir": explore["run_dir"],
        }

        if serving is not None:
            near_params = {"triton_url": serving["url"], "model": str(model_dir), **NEARLINE[summary["mode"]]}
            near = _run("nearline", near_params, say)
            summary["nearline"] = {"run_dir": near["run_dir"], "metrics": _task_metrics(near, "nearline-commit")}
            summary["nearline"]["validation_positive_rate"] = _validation_rate(model_dir)
            say("   " + _fmt_metrics(summary["nearline"]["metrics"]))
    if serving is not None:
        summary["monitoring"] = _monitor(wanted, dataset, say)
        summary["recommend"] = _recommend(say)
    summary["simulation"] = _simulation(say)
    summary["seconds"] = round(time.monotonic() - t0, 1)
    out = write_json(demo_dir() / "summary.json", summary)
    _final_summary(summary, out, say)
    return summary


def _final_summary(summary: dict[str, Any], path: Path, say: Say) -> None:
    """Where everything is, the evaluation tables, the Triton URL, and `seren recommend` for three users."""
    say(f"\n{'=' * 78}\n seren demo ({summary['mode']}) finished in {summary['seconds']} s\n{'=' * 78}")
    rows = [
        ("dataset", summary["features"]["dataset"]),
        ("feature store", str(features_dir())),
        ("SerenGPT model", summary["serengpt"]["model"]),
        ("ablation report", summary["serengpt"]["report"]),
        ("exploration report", summary.get("exploration", {}).get("report", "-")),
        ("novel-interest table", summary.get("exploration", {}).get("table", "-")),
        ("Triton model repository", summary.get("serving", {}).get("model_repository", "-")),
        ("nearline run", summary.get("nearline", {}).get("run_dir", "-")),
        ("drift reports", summary.get("monitoring", {}).get("reports_dir", "-")),
        ("drift report (this run)", summary.get("monitoring", {}).get("report", "-")),
        ("pipeline runs", str(pipeline_runs_dir())),
        ("this summary", str(path)),
    ]
    width = max(len(k) for k, _ in rows)
    say("\n".join(f" {k:<{width}}  {v}" for k, v in rows))
    for title, key in (("SerenGPT ablation (held-out users)", "serengpt"), ("Interest exploration", "exploration")):
        report = Path(summary.get(key, {}).get("report") or "")
        if report.is_file():
            say(f"\n== {title}\n" + report.read_text().strip())
    if "serving" in summary:
        say(
            f"\n== Triton: served at http://{summary['serving']['url']} during the demo; "
            f"`seren serve {summary['serving']['model_repository']}` serves it again"
        )
    if "nearline" in summary:
        rate = summary["nearline"].get("validation_positive_rate")
        said = f" (validation positive rate {rate:.3f}: the card's threshold is rate-matched to it)" if rate else ""
        say("== nearline: " + _fmt_metrics(summary["nearline"]["metrics"]) + said)
    if "monitoring" in summary:
        m = summary["monitoring"]
        say(f"== monitoring: drift gate failed, retraining recorded (dry run): {'yes' if m['retraining_triggered'] else 'no'}; "
            + _fmt_metrics(m["metrics"]))  # fmt: skip
    if "recommend" in summary:
        say(summary["recommend"]["slates"])
    if "simulation" in summary:
        sim = summary["simulation"]
        say(f"\n== closed-loop simulation ({sim['setup']}): lift over control [95% CI]\n{sim['table']}")
        say(f"   report: {sim['report']}  (full size: `seren simulate`, benchmarks/simulation.py)")


@contextlib.contextmanager
def _served(model_dir: Path, dataset_dir: Path, say: Say) -> Iterator[dict[str, Any]]:
    """Serve the trained model on the real local Triton (kept up for the nearline job) and score a
    few users' candidates as a smoke check."""
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
        repo = triton_model_repository()
        onnx_path = export_onnx(model_dir, serving_dir() / "scorer.onnx")
        build_model_repository(onnx_path, model_dir, repo, target="local")
    ds = load_dataset(dataset_dir)
    _, tok = load_causal_lm(model_dir)
    users = sorted(ds.interactions["user_id"].unique())[:3]
    profiles = build_profiles(ds, tok, users=users).set_index("user_id")
    items = ds.items.set_index("item_id")
    seen = set(ds.interactions["item_id"])
    cands = [i for i in items.index if i not in seen][:4] or list(items.index[:4])
    results: dict[str, Any] = {}
    from seren.llm.calibration import load_calibration

    with TritonServer(repo, models=["serengpt"]) as server:
        client = SerenClient(server.http_url, calibration=load_calibration(model_dir))  # calibrated P(serendipitous)
        for u in users:
            scores = client.score([profiles.loc[u, "profile_text"]] * len(cands), [items.loc[i, "text"] for i in cands])
            results[u] = {i: round(float(s), 4) for i, s in zip(cands, scores, strict=True)}
            say(f"   {u}: " + ", ".join(f"{items.loc[i, 'title']} -> {s:.3f}" for i, s in results[u].items()))
        url = server.http_url
        say(f"   served at {url} (kept up for the nearline job)")
        yield {"model_repository": str(repo), "onnx": str(onnx_path or ""), "sample_scores": results, "url": url}
    say(f"   tritonserver stopped (`seren serve {repo}` serves it again)")


def _validation_rate(model_dir: Path) -> float | None:
    """The validation users' positive rate the card's calibration was fitted to (its decision threshold
    judges that share serendipitous there): what nearline's judged_share is compared with."""
    from seren.llm.calibration import load_calibration

    rate = ((load_calibration(model_dir) or {}).get("selection") or {}).get("base_rate")
    return None if rate is None else float(rate)


def _task_metrics(res: dict[str, Any], task: str) -> dict[str, Any]:
    """The task's `metrics` artifact metadata, as run_local reports it."""
    art = res.get("tasks", {}).get(task, {}).get("artifacts", {}).get("metrics", {})
    return dict(art.get("metadata") or {}) if isinstance(art, dict) else {}


def _fmt_metrics(m: dict[str, Any]) -> str:
    return ", ".join(f"{k}={round(v, 3) if isinstance(v, float) else v}" for k, v in m.items()) or "(no metrics)"


def _monitor(wanted: dict[str, Any], dataset: Path, say: Say) -> dict[str, Any]:
    """Drift of the nearline judgments against the validation-time reference. The nearline job
    stamps judgments with the data's event time (replayed synthetic data lies in the past), so the
    demo compares every judgment (window "all"). A failed gate runs the trigger in alert-only mode
    (dry_run): it checks and records the retraining run it would start, since a second training would
    double the demo's time; `seren pipeline run monitoring --local` starts it for real."""
    params = {
        "window": "all",
        "dataset": str(dataset),
        "target_params": _params_for("serengpt_training", wanted),
        "dry_run": True,
    }
    res = _run("monitoring", params, say)
    drift = _task_metrics(res, "judgment-drift")
    report = _artifact_path(res, "Output")
    triggered = "trigger-training" in res.get("tasks", {})
    say("   drift: " + _fmt_metrics(drift))
    say(f"   drift gate failed, retraining recorded (dry run): {'yes' if triggered else 'no'}; report {report}")
    return {"run_dir": res["run_dir"], "metrics": drift, "report": str(report), "retraining_triggered": triggered,
            "reports_dir": str(reports_dir())}  # fmt: skip


def _recommend(say: Say) -> dict[str, Any]:
    """`seren recommend` for three users, from the online store only (freshness against the watermark)."""
    from feature_repo import store as fs
    from seren.recommend import pick_users, sample_slates

    store = fs.get_store()
    users = pick_users(store, 3)
    text = sample_slates(store, users=users, k=10, now="watermark")
    head = "\n== seren recommend for three users (online store only; `seren recommend --user U --now watermark`)\n"
    return {"users": users, "slates": head + text}


def _simulation(say: Say) -> dict[str, Any]:
    """A small, fast closed-loop simulation (`seren simulate --quick`: seconds): what seren's slots do
    to a population over rounds, against control and heuristic arms."""
    from seren.simulation.run import quick_config, run_simulation

    cfg = quick_config()
    say(f"\n== closed-loop simulation ({cfg.n_users} users x {cfg.rounds} rounds, 6 arms)")
    res = run_simulation(cfg)
    setup = f"{cfg.n_users} users x {cfg.rounds} rounds, judge {cfg.judge}"
    return {"setup": setup, "table": res["text"], "report": res["report"]["html"], "acceptance": res["acceptance"]}
