"""Start the retraining pipeline after a failed gate: on Kubeflow when a host is configured, else locally.

The target is a parameter (pipeline name + arguments; SerenGPT training by default) so the same
trigger can start a cheaper pipeline in tests. Kubeflow: `pipelines.submit` (compile, upload the
versioned spec, start a run). Local: `pipelines.run_local` (kfp.local).

Inside a KFP component the executor sets _KFP_RUNTIME=true, which strips `kfp.dsl` down to the
runtime types: the pipelines (and their @dsl.component decorators) cannot even be imported there.
So from a component the trigger runs in a child interpreter with the full SDK
(`python -m monitoring.retrain`), and reports back one JSON line or one error line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from seren.errors import SerenError, ServiceError

DEFAULT_TARGET = "serengpt_training"
HOST_ENV = "SEREN_KFP_HOST"


def trigger_training(
    pipeline: str = DEFAULT_TARGET,
    params: dict[str, Any] | None = None,
    host: str | None = None,
    experiment: str = "seren",
    reason: str = "",
    dry_run: bool = False,
) -> dict[str, Any]:
    """Run `pipeline` with `params`; host None/"" falls back to $SEREN_KFP_HOST, and without one the run is
    local. Returns {"mode": "kubeflow"|"local", "pipeline", "run_id", "url" or "run_dir", "reason", ...}.

    dry_run: alert-only mode (and the demo's, where a second training would double its time): record
    what would start, after checking the target pipeline and its parameters, and start nothing."""
    host = host or os.environ.get(HOST_ENV, "").strip() or None
    # a KFP dict parameter travels as a protobuf Struct, where 20 arrives as 20.0: integral floats back to
    # int (an int is still accepted where the target pipeline wants a float)
    params = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in (params or {}).items()}
    if os.environ.get("_KFP_RUNTIME", "").lower() == "true":
        return _in_child(pipeline, params or {}, host, experiment, reason, dry_run)
    import pipelines as P

    if dry_run:
        from pipelines.framework import coerce_params

        checked = coerce_params(P.load(pipeline), params)  # unknown pipeline/params fail here, as a real start would
        where = f"Kubeflow at {host}" if host else "a local run"
        return {"mode": "dry_run", "pipeline": pipeline, "run_id": "dry-run", "would_start_on": where,
                "params": checked, "reason": reason}  # fmt: skip
    if host:
        res = P.submit(pipeline, host, experiment=experiment, params=params or {})
        return {
            "mode": "kubeflow",
            "pipeline": res["pipeline"],
            "run_id": res["run_id"],
            "url": res["url"],
            "version": res["version"],
            "host": res["host"],
            "params": res["params"],
            "reason": reason,
        }
    res = P.run_local(pipeline, params or {})
    return {
        "mode": "local",
        "pipeline": res["pipeline"],
        "run_id": os.path.basename(res["pipeline_root"]),
        "run_dir": res["run_dir"],
        "pipeline_root": res["pipeline_root"],
        "version": res["version"],
        "params": res["params"],
        "tasks": sorted(res["tasks"]),
        "reason": reason,
    }


def _in_child(
    pipeline: str, params: dict[str, Any], host: str | None, experiment: str, reason: str, dry_run: bool = False
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "_KFP_RUNTIME"}
    args = json.dumps(
        {
            "pipeline": pipeline,
            "params": params,
            "host": host,
            "experiment": experiment,
            "reason": reason,
            "dry_run": dry_run,
        }  # fmt: skip
    )
    proc = subprocess.run(
        [sys.executable, "-m", "monitoring.retrain", args], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        err = next((ln for ln in reversed(lines) if ln.startswith("error: ")), lines[-1] if lines else "")
        raise (ServiceError if proc.returncode == ServiceError.exit_code else SerenError)(
            f"starting {pipeline} failed: {err.removeprefix('error: ') or f'exit {proc.returncode}'}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _main(argv: list[str]) -> int:
    """python -m monitoring.retrain '{"pipeline": ..., "params": {...}, "host": ..., ...}' -> one JSON line."""
    try:
        info = trigger_training(**json.loads(argv[0]))
    except SerenError as exc:
        print(f"error: {exc.line()}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(info, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
