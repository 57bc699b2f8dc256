"""Nearline adaptation (SERAL stage 3): refresh changed users' profiles and serendipity candidates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from seren.commands._common import JsonOpt, check_feature_dir, emit, progress
from seren.durations import duration_seconds
from seren.errors import ConfigError, SerenError, ServiceError

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
        f"{res['items_scored']} item(s) scored, {res['candidates_kept']} kept; pushed profiles "
        f"{res['pushed']['user_profile']}, candidates {res['pushed']['user_candidates']}\n"
        f"watermark {res['watermark_before']} -> {res['watermark_after']} ({res['state']})\n"
        f"stages: {shares}; total {res.get('seconds', 0):.2f}s"
    )


def _stage(name: str, info: dict[str, Any]) -> None:
    detail = " ".join(f"{k}={v}" for k, v in info.items())
    typer.echo(f"nearline: {name} {detail}".rstrip(), err=True)


def _progress(it: Any, total: int, desc: str) -> Any:
    return progress(it, total=total, desc=desc)


@app.command("run")
def run(
    data: Path = typer.Option(
        None,
        "--data",
        "-d",
        help="Dataset directory; its interactions are the event log (default: the published exploration run's).",
    ),
    url: str = typer.Option(
        "127.0.0.1:8000", "--url", envvar="SEREN_TRITON_URL", help="Triton serving the serengpt ensemble."
    ),
    protocol: str = typer.Option("http", "--protocol", help="http or grpc."),
    exploration: Path = typer.Option(
        None,
        "--exploration",
        help="Published exploration outputs: clusters/, pair_table.parquet, seqrec/ (default: $SEREN_HOME/exploration).",
    ),
    model: str = typer.Option(
        "smollm2",
        "--model",
        help="SerenGPT model dir (tokenizer + the profile token budget from its card) or a base model name.",
    ),
    token_budget: int = typer.Option(None, "--token-budget", min=8, help="Profile tokens (default: the model card's)."),
    k_main: int = typer.Option(20, "--k-main", min=1, help="Main slate size (unrestricted recommender)."),
    k_explore: int = typer.Option(10, "--k-explore", min=0, help="Exploration slate size (novel clusters only)."),
    n_novel: int = typer.Option(3, "--n-novel", min=1, help="Novel clusters taken from the pair table."),
    top_n: int = typer.Option(10, "--top-n", min=1, help="SerenGPT candidates kept per user."),
    threshold: float = typer.Option(0.5, "--threshold", min=0.0, max=1.0, help="Minimum SerenGPT score kept."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="(profile, item) pairs per Triton request."),
    retries: int = typer.Option(3, "--retries", min=0, help="Triton retries on transient errors."),
    timeout: float = typer.Option(30.0, "--timeout", help="Triton request timeout (s)."),
    target: str = typer.Option(None, "--target", "-t", help="Feast target (default: $SEREN_FEAST_TARGET or local)."),
    features_dir: Path = typer.Option(None, "--features-dir", help="Feature data dir (default: $SEREN_HOME/features)."),
    state: str = typer.Option(
        None, "--state", help="Watermark location (default: <features dir>/nearline; gs://bucket/prefix in production)."
    ),
    judgments: str = typer.Option(
        None,
        "--judgments",
        help="Judgments parts dir for monitoring (default: $SEREN_HOME/monitoring/judgments; 'none').",
    ),
    initial_lookback: str = typer.Option(
        None,
        "--initial-lookback",
        help="First run only (no watermark yet): refresh users active in this span before the newest event (1d, 6h).",
    ),
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
    """Refresh users with events newer than the watermark: profiles, candidates, SerenGPT scores -> Feast."""
    from seren.nearline import NearlineConfig, run_loop, run_nearline

    if once and every:
        raise ConfigError("--once and --every are mutually exclusive", "pass one of them")
    if protocol not in ("http", "grpc"):
        raise ConfigError(f"unknown --protocol {protocol!r}", "use --protocol http or --protocol grpc")
    seconds = parse_every(every) if every else None  # bad input fails before any data is read
    check_feature_dir(features_dir)
    cfg = NearlineConfig(
        dataset_dir=str(data) if data else "",
        triton_url=url,
        exploration_dir=str(exploration) if exploration else None,
        model=model,
        token_budget=token_budget,
        k_main=k_main,
        k_explore=k_explore,
        n_novel=n_novel,
        top_n=top_n,
        threshold=threshold,
        batch_size=batch_size,
        protocol=protocol,
        timeout_s=timeout,
        retries=retries,
        feast_target=target,
        feast_data_dir=str(features_dir) if features_dir else None,
        state_uri=state,
        judgments_dir=judgments,
        initial_lookback=initial_lookback,
    )
    if shards > 1:
        if every:
            raise ConfigError("--shards with --every is not supported", "schedule the nearline pipeline with shards=S")
        from seren.nearline.shard import run_sharded

        res = run_sharded(cfg, shards, on_stage=_stage)
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
