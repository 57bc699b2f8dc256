"""Kubeflow pipelines: list, compile (versioned specs, goldens), run locally, submit, schedule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from seren.commands._common import JsonOpt, emit
from seren.errors import ConfigError

NAME = "pipeline"
app = typer.Typer(no_args_is_help=True, help=__doc__)

ParamOpt = typer.Option([], "--param", "-p", help="Pipeline argument KEY=VALUE (repeatable; JSON for lists/dicts).")
HostOpt = typer.Option(None, "--host", envvar="SEREN_KFP_HOST", help="Kubeflow Pipelines API URL (or $SEREN_KFP_HOST).")
ExperimentOpt = typer.Option("seren", "--experiment", "-e", help="Kubeflow experiment to run in (created if missing).")
TimeoutOpt = typer.Option(5.0, "--timeout", help="Seconds to wait for the host to answer before giving up.")
InsecureOpt = typer.Option(
    False, "--insecure", help="Send SEREN_KFP_TOKEN over plain http to a non-loopback host (trusted networks only)."
)


def check_params(params: dict[str, Any], local: bool) -> None:
    """Check the parameters a pipeline step would only check after earlier steps wrote their outputs
    (the features pipeline replaces the offline tables before `feast apply` reads the target): fail
    before the run starts instead. Locally the target is also rendered and (Redis) pinged."""
    target = params.get("feast_target")
    if isinstance(target, str) and target:
        from feature_repo.config import check_target, resolve_target

        try:
            resolve_target(target)
        except ConfigError as exc:
            raise ConfigError(f"--param feast_target: {exc.problem}", exc.fix) from None
        if local:
            data_dir = params.get("feast_data_dir") or None
            check_target(target, Path(data_dir) if data_dir else None)
    for key in ("feast_data_dir",):
        value = params.get(key)
        if isinstance(value, str) and value and Path(value).exists() and not Path(value).is_dir():
            raise ConfigError(f"--param {key}={value} is a file, not a directory", f"pass a directory for {key}")


def _host(host: str | None) -> str:
    if not host:
        raise ConfigError("no Kubeflow Pipelines host given", "pass --host http://HOST:PORT or set SEREN_KFP_HOST")
    return host


@app.command("list")
def list_cmd(as_json: bool = JsonOpt) -> None:
    """List the pipelines under pipelines/ with their parameters and local-run defaults."""
    import pipelines as P

    rows: list[dict[str, Any]] = []
    for name in P.list_pipelines():
        try:
            info = P.load(name)
        except Exception as exc:  # one broken pipeline must not hide the others
            rows.append({"name": name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        rows.append(
            {
                "name": name,
                "kfp_name": info.kfp_name,
                "description": info.description,
                "parameters": info.parameter_types(),
                "default_params": info.default_params,
            }
        )
    lines = [f"{r['name']:<20} {r.get('description') or r.get('error', '')}" for r in rows]
    emit(rows, as_json, "\n".join(lines) if lines else "no pipelines found")


@app.command("compile")
def compile_cmd(
    name: str | None = typer.Argument(None, help="Pipeline name (see `seren pipeline list`)."),
    all_: bool = typer.Option(False, "--all", help="Compile every pipeline."),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default: $SEREN_HOME/compiled)."),
    golden: bool = typer.Option(
        False, "--golden", help="Rewrite pipelines/<name>/golden.yaml instead (after a deliberate DAG change)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Compile to IR YAML named seren-<name>-<version>+<git sha>.yaml (loadable by the kfp SDK)."""
    import pipelines as P

    if bool(name) == all_:
        raise ConfigError(
            "give exactly one of NAME or --all",
            "e.g. `seren pipeline compile features` or `seren pipeline compile --all`",
        )
    if out is not None and out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory", "pass a directory for the compiled specs")
    names = P.list_pipelines() if all_ else [name]
    if golden:
        written = {n: str(P.update_golden(n)) for n in names}
    else:
        written = {n: str(P.compile(n, out)) for n in names}
    info = {"version": P.pipeline_version(), "golden": golden, "specs": written}
    emit(info, as_json, "\n".join(f"{n}: {p}" for n, p in written.items()))


def _task_total(info: Any) -> int | None:
    """Executor tasks in the DAG (nested DAGs included), for the progress bar."""
    spec = info.pipeline.pipeline_spec
    dags = [spec.root.dag] + [c.dag for c in spec.components.values() if c.WhichOneof("implementation") == "dag"]
    total = sum(
        1
        for d in dags
        for t in d.tasks.values()
        if spec.components[t.component_ref.name].WhichOneof("implementation") != "dag"
    )
    return total or None


def _human_run(result: dict[str, Any]) -> str:
    lines = [f"{result['pipeline']} {result['version']}: {len(result['tasks'])} task(s) succeeded"]
    for task, data in result["tasks"].items():
        metrics = {k: v for art in data["artifacts"].values() for k, v in art["metadata"].items()}
        shown = ", ".join(
            f"{k}={int(v) if float(v).is_integer() else v}" for k, v in metrics.items() if isinstance(v, int | float)
        )
        lines.append(f"  {task:<28} {shown}")
    for key, value in result["outputs"].items():
        if isinstance(value, dict):  # an artifact: its files, or (metrics) its values
            value = value["path"] if Path(value["path"]).exists() else json.dumps(value["metadata"], sort_keys=True)
        lines.append(f"  output {key}: {value}")
    lines.append(f"  run dir: {result['run_dir']}")
    lines.append(f"  log: {result['log']}")
    return "\n".join(lines)


@app.command("run")
def run_cmd(
    name: str = typer.Argument(..., help="Pipeline name (see `seren pipeline list`)."),
    local: bool = typer.Option(False, "--local", help="Run here with kfp.local (SubprocessRunner, this Python)."),
    param: list[str] = ParamOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Run a pipeline locally: DEFAULT_PARAMS overridden by --param; outputs under $SEREN_HOME/pipeline_runs/."""
    import pipelines as P

    if not local:
        raise ConfigError(
            "`seren pipeline run` only runs locally",
            "add --local, or use `seren pipeline submit NAME --host URL` for Kubeflow",
        )
    params = P.parse_params(name, param)
    check_params(params, local=True)
    info = P.load(name)
    total = _task_total(info)

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*cols, console=Console(stderr=True), transient=True) as bar:
        tid = bar.add_task(info.kfp_name, total=total)

        def on_event(kind: str, task: str, status: str) -> None:
            if kind == "start":
                bar.update(tid, description=f"{info.kfp_name}: {task}")
            elif kind == "progress":  # a training step: "sft 12/144  loss 0.41  ETA 3m05s"
                bar.update(tid, description=f"{info.kfp_name}: {task}: {status}")
            else:
                bar.advance(tid)

        result = P.run_local(name, params, on_event=on_event)
    emit(result, as_json, _human_run(result))


@app.command("submit")
def submit_cmd(
    name: str = typer.Argument(..., help="Pipeline name (see `seren pipeline list`)."),
    host: str | None = HostOpt,
    experiment: str = ExperimentOpt,
    param: list[str] = ParamOpt,
    timeout: float = TimeoutOpt,
    insecure: bool = InsecureOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Upload the versioned spec to Kubeflow (pipeline version seren-<name>-<version>) and start a run."""
    import pipelines as P

    params = P.parse_params(name, param)
    check_params(params, local=False)
    res = P.submit(name, _host(host), experiment=experiment, params=params, timeout=timeout, insecure=insecure)
    reused = " (existing version reused)" if res["reused_version"] else ""
    emit(
        res,
        as_json,
        f"started run {res['run_id']} of {res['version_name']}{reused} in experiment {experiment!r}: {res['url']}",
    )


@app.command("schedule")
def schedule_cmd(
    name: str = typer.Argument(..., help="Pipeline name (see `seren pipeline list`)."),
    host: str | None = HostOpt,
    every: str = typer.Option("15m", "--every", help="Interval: a number with s, m, h or d (e.g. 15m)."),
    experiment: str = ExperimentOpt,
    param: list[str] = ParamOpt,
    timeout: float = TimeoutOpt,
    insecure: bool = InsecureOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Create a Kubeflow recurring run of the versioned pipeline (no catch-up, one run at a time)."""
    import pipelines as P

    interval = P.parse_every(every)
    params = P.parse_params(name, param)
    check_params(params, local=False)
    res = P.schedule(
        name, _host(host), every=every, experiment=experiment, params=params, timeout=timeout, insecure=insecure
    )
    emit(
        res,
        as_json,
        f"scheduled {res['version_name']} every {every.strip()} ({interval} s): recurring run {res['recurring_run_id']}",
    )
