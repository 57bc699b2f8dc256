"""Nearline adaptation (SERAL stage 3): refresh changed users' profiles and serendipity candidates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from seren.commands._common import JsonOpt, check_feature_dir, emit, progress
from seren.commands._model_options import model_options
from seren.durations import duration_seconds
from seren.errors import ConfigError, SerenError, ServiceError
from seren.nearline.config import NearlineConfig

NAME = "nearline"
app = typer.Typer(no_args_is_help=True, help=__doc__)


MAX_EVERY_S = 30 * 86400  # a longer sleep overflows time.sleep on some platforms and is never meant


def parse_every(text: str) -> float:
    """'900', '90s', '15m', '2h' -> seconds (at most 30 days), in seren's one duration grammar."""
    return duration_seconds(text, flag="--every", max_seconds=MAX_EVERY_S)


def _human(res: dict[str, Any]) -> str:
    st = res["stage_seconds"]
    total = sum(st.values()) or 1.0
    shares = ", ".join(f"{k} {v:.2f}s ({v / total:.0%})" for k, v in st.items())
    return (
        f"nearline: {res['users_refreshed']} user(s) refreshed, {res['users_skipped_no_history']} skipped (no history), "
        f"{res['items_scored']} item(s) scored, {res.get('items_judged', 0)} judged serendipitous"
        f"{_at(res)}, {res['candidates_kept']} kept; pushed profiles "
        f"{res['pushed']['user_profile']}, candidates {res['pushed']['user_candidates']}\n"
        f"watermark {res['watermark_before']} -> {res['watermark_after']} ({res['state']})\n"
        f"stages: {shares}; total {res.get('seconds', 0):.2f}s"
    )


def _at(res: dict[str, Any]) -> str:
    return f" (>= {res['threshold']:.3f})" if res.get("threshold") is not None else ""


def _stage(name: str, info: dict[str, Any]) -> None:
    detail = " ".join(f"{k}={v}" for k, v in info.items())
    typer.echo(f"nearline: {name} {detail}".rstrip(), err=True)


def _progress(it: Any, total: int, desc: str) -> Any:
    return progress(it, total=total, desc=desc)


def _run_pipeline(cfg: Any, shards: int) -> dict[str, Any]:
    """plan -> ParallelFor(shards) -> commit: the nearline pipeline itself (kfp.local), never a second
    orchestration of its stages; returns the commit's summary (+ where the run's files are)."""
    import json

    import pipelines

    def on_event(kind: str, task: str, detail: str) -> None:
        if kind in ("start", "done", "failed"):
            typer.echo(f"nearline: {kind} {task} {detail}".rstrip(), err=True)

    res = pipelines.run_local("nearline", {**cfg.model_dump(), "shards": shards}, on_event=on_event)
    commit = next(t for name, t in res["tasks"].items() if name.rsplit("/", 1)[-1] == "nearline-commit")
    uri = str(commit["artifacts"]["summary"]["uri"]).removeprefix("file://")
    return {**json.loads(Path(uri).read_text()), "pipeline_run": res["run_dir"]}


@app.command("run")
@model_options(NearlineConfig)
def run(
    settings: dict[str, Any],
    every: str = typer.Option(None, "--every", help="Run every N seconds (or 90s, 15m, 1h) until Ctrl-C."),
    once: bool = typer.Option(False, "--once", help="Run once and exit (the default without --every)."),
    max_runs: int = typer.Option(None, "--max-runs", min=1, hidden=True, help="Stop the --every loop after N runs."),
    shards: int = typer.Option(
        1,
        "--shards",
        min=1,
        help="Split the window's users into S shards (plan -> shards -> commit; the pipeline's fan-out).",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Refresh users with events newer than the watermark: profiles, candidates, SerenGPT scores -> Feast.

    The settings options are NearlineConfig's fields (seren/nearline/config.py), generated."""
    from seren.nearline import run_loop, run_nearline

    if once and every:
        raise ConfigError("--once and --every are mutually exclusive", "pass one of them")
    seconds = parse_every(every) if every else None  # bad input fails before any data is read
    cfg = NearlineConfig.model_validate(settings)  # ranges, choices, durations: one line
    check_feature_dir(Path(cfg.feast_data_dir) if cfg.feast_data_dir else None)
    if shards > 1:
        if every:
            raise ConfigError("--shards with --every is not supported", "schedule the nearline pipeline with shards=S")
        res = _run_pipeline(cfg, shards)
        emit(res, as_json, _human(res))
        return
    if not every:
        res = run_nearline(cfg, on_stage=_stage, progress=_progress)
        emit(res, as_json, _human(res))
        return

    def show(res: dict[str, Any]) -> None:
        if as_json:
            emit(res, True)
        else:
            typer.echo(_human(res))

    last_failed = False

    def failed(exc: SerenError) -> None:
        nonlocal last_failed
        last_failed = True
        typer.echo(f"error: {exc.line()} (watermark unchanged; retrying at the next tick)", err=True)

    def ok(res: dict[str, Any]) -> None:
        nonlocal last_failed
        last_failed = False
        show(res)

    assert seconds is not None
    try:
        run_loop(cfg, seconds, on_run=ok, on_stage=_stage, progress=_progress, max_runs=max_runs, on_error=failed)
    except KeyboardInterrupt:
        typer.echo("nearline: stopped", err=True)
    if last_failed:
        raise typer.Exit(ServiceError.exit_code)


@app.command("status")
def status(
    target: str = typer.Option(None, "--target", "-t", help="Feast target (default: $SEREN_FEAST_TARGET or local)."),
    features_dir: Path = typer.Option(None, "--features-dir", help="Feature data dir (default: $SEREN_HOME/features)."),
    state: str = typer.Option(None, "--state", help="Watermark location (default: <features dir>/nearline)."),
    as_json: bool = JsonOpt,
) -> None:
    """Show the watermark: the event time up to which users have been refreshed."""
    from feature_repo.config import default_data_dir
    from seren.nearline import WatermarkStore, nearline_dir

    check_feature_dir(features_dir)
    st = WatermarkStore(state or nearline_dir(Path(features_dir) if features_dir else default_data_dir()))
    rec = st.read()
    out = {"state": st.uri, **(rec or {"watermark": None})}
    emit(out, as_json, f"watermark {out['watermark'] or 'none (the next run processes every user)'} ({st.uri})")
