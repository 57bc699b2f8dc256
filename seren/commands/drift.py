"""`seren drift`: Evidently drift/quality reports on SerenGPT judgments, with pass/fail gates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from seren.commands._common import JsonOpt, emit, parse_time
from seren.errors import ConfigError


def _check_inputs(window: str, end: str, horizon: str, dirs: dict[str, Path | None]) -> None:
    """Bad windows, times and output paths fail here, before Evidently is imported or a file is written."""
    from monitoring.judgments import parse_window

    for opt, text in (("--window", window), ("--feedback-horizon", horizon)):
        parse_window(text, flag=opt)
    if end.strip().lower() not in ("", "now", "latest"):
        parse_time(end, "--end")
    for opt, d in dirs.items():
        if d is not None and d.exists() and not d.is_dir():
            raise ConfigError(f"{opt} {d} is a file, not a directory", f"pass a directory for {opt}")


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _show(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    colour = {"pass": "green", "fail": "red", "no_data": "yellow"}[res["status"]]
    w = res["window"]
    console.print(
        f"[bold {colour}]{res['status'].upper()}[/] {res['message'] or ''}\n"
        f"window {w['start'] or 'beginning'} -> {w['end']} ({w['length']}); "
        f"rows: reference {res['rows']['reference']}, current {res['rows']['current']}"
    )
    src = res["sources"]["reference_from"]
    if src["source"] == "registry":
        console.print(
            f"reference: {src['model']} v{src['version']} deployed to {src['environment']} ({src['registry']})"
        )
    else:
        console.print(f"reference: {src['path']} ({src['source']})")
    if res["columns"]:
        t = Table(title="judgment drift (Evidently)")
        t.add_column("column", no_wrap=True, min_width=max(len(c["column"]) for c in res["columns"]))
        for c in ("test", "score", "threshold", "drift", "reference mean", "current mean"):
            t.add_column(c, overflow="fold")
        for c in res["columns"]:
            t.add_row(
                c["column"],
                c["method"] or "",
                _fmt(c["score"]),
                _fmt(c["threshold"]),
                "[red]drifted[/]" if c["drifted"] else "[green]stable[/]",
                _fmt(c["reference_mean"]),
                _fmt(c["current_mean"]),
            )
        console.print(t)
    if res["quality"]:
        t = Table(title="judgment quality vs feedback")
        for c in ("", "precision", "recall", "rows with feedback"):
            t.add_column(c)
        for side, q in res["quality"].items():
            t.add_row(side, _fmt(q["precision"]), _fmt(q["recall"]), str(q["rows"]))
        console.print(t)
    if res["recsys"]:
        keys = list(res["recsys"]["current"])
        t = Table(title=f"recommender quality (top {res['recsys_k']})")
        for c in ("", *keys):
            t.add_column(c)
        for side, vals in res["recsys"].items():
            t.add_row(side, *(_fmt(vals[k]) for k in keys))
        console.print(t)
    if res["gates"]:
        t = Table(title="gates")
        t.add_column("gate", no_wrap=True, min_width=max(len(g["name"]) for g in res["gates"]))
        for c in ("value", "passes when", "result"):
            t.add_column(c, overflow="fold")
        for g in res["gates"]:
            result = (
                f"skipped: {g['skipped']}" if g["skipped"] else ("[green]pass[/]" if g["passed"] else "[red]fail[/]")
            )
            t.add_row(g["name"], _fmt(g["value"]), f"{g['op']} {g['threshold']}", result)
        console.print(t)
    console.print(f"reports: {res['reports_dir']}  index: {res['index']}")
    if res["workspace"]:
        console.print(f"Evidently UI: evidently ui --workspace {res['workspace']['path']}")


def drift(
    reference: Path | None = typer.Option(
        None,
        "--reference",
        "-r",
        help="Reference judgments (parquet/csv file or folder) (default: $SEREN_HOME/monitoring/reference_judgments.parquet, "
        "the last passing validation's).",
    ),
    environment: str | None = typer.Option(
        None,
        "--environment",
        "-e",
        help="Use the reference judgments registered with the version deployed to this environment (dev, staging, prod).",
    ),
    current: Path | None = typer.Option(
        None,
        "--current",
        "-c",
        help="Current (nearline) judgments, file or folder of parts (default: $SEREN_HOME/monitoring/judgments).",
    ),
    window: str = typer.Option("1d", "--window", "-w", help="Current window length (30m, 12h, 1d, 2w) or 'all'."),
    end: str = typer.Option("now", "--end", help="Window end: now, latest (newest judgment) or an ISO time."),
    dataset: Path | None = typer.Option(
        None, "--dataset", "-d", help="Dataset folder: feedback from its interactions + recommender quality."
    ),
    reports_dir: Path | None = typer.Option(
        None, "--reports-dir", help="Where runs are written (default: $SEREN_HOME/reports)."
    ),
    workspace: Path | None = typer.Option(
        None, "--workspace", help="Evidently workspace (default: $SEREN_HOME/evidently_workspace)."
    ),
    no_workspace: bool = typer.Option(False, "--no-workspace", help="Do not store snapshots in a workspace."),
    k: int = typer.Option(10, "--k", help="Slate length for the recommender-quality metrics."),
    feedback_horizon: str = typer.Option("7d", "--feedback-horizon", help="How long after a judgment feedback counts."),
    max_drift_share: float = typer.Option(0.5, help="Fail when the share of drifted judgment columns >= this."),
    max_score_psi: float = typer.Option(0.2, help="Fail when the score's PSI >= this."),
    min_score_ks_pvalue: float = typer.Option(0.01, help="Fail when the score's K-S p-value < this."),
    max_precision_drop: float = typer.Option(0.1, help="Fail when precision vs feedback drops by more than this."),
    min_feedback_rows: int = typer.Option(20, help="Judgments with feedback needed before precision is used."),
    as_json: bool = JsonOpt,
) -> None:
    """Compare current nearline judgments with the validation-time reference (Evidently), write HTML + JSON
    reports and a workspace snapshot, print a summary; exit 1 when a gate fails, 0 on pass or no data."""
    _check_inputs(window, end, feedback_horizon, {"--reports-dir": reports_dir, "--workspace": workspace})
    from monitoring.drift import run_drift

    res = run_drift(
        reference,
        current,
        environment=environment,
        window=window,
        end=end,
        dataset=dataset,
        gates={
            "max_drift_share": max_drift_share,
            "max_score_psi": max_score_psi,
            "min_score_ks_pvalue": min_score_ks_pvalue,
            "max_precision_drop": max_precision_drop,
            "min_feedback_rows": min_feedback_rows,
        },
        reports_dir=reports_dir,
        workspace=False if no_workspace else workspace,
        k=k,
        feedback_horizon=feedback_horizon,
    )
    if as_json:
        emit(res, True)
    else:
        _show(res)
    if res["status"] == "fail":
        # SystemExit, not typer.Exit: seren.cli.main runs click with standalone_mode=False, where an
        # Exit's code is returned (and dropped) instead of becoming the process status
        raise SystemExit(1)


def register(root: typer.Typer) -> None:
    root.command("drift")(drift)
