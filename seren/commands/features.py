"""Feast feature store: write sources, apply definitions, materialize, read online features."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import typer

from seren.commands._common import JsonOpt, check_feature_dir, emit, parse_time, progress
from seren.durations import parse_duration
from seren.errors import ConfigError

NAME = "features"
app = typer.Typer(no_args_is_help=True, help=__doc__)

TargetOpt = typer.Option(
    None,
    "--target",
    "-t",
    help="Store target: local, redis, gcp, gcp-datastore (default: $SEREN_FEAST_TARGET or local).",
)
DirOpt = typer.Option(None, "--features-dir", help="Feature data dir (default: $SEREN_HOME/features).")


def parse_age(text: str, flag: str = "--max-age") -> timedelta:
    """'90s', '15m', '2h', '1d' -> timedelta, in seren's one duration grammar (at most 100 years)."""
    return parse_duration(text, flag=flag)


def _parse_time(text: str | None, opt: str) -> datetime | None:
    if text is None:
        return None
    return parse_time(text, opt).to_pydatetime()


@app.command("apply")
def apply_cmd(
    target: str | None = TargetOpt,
    data: Path | None = typer.Option(
        None, "--data", help="Dataset dir: (re)write the user_stats / item_features offline sources from it first."
    ),
    as_of: str | None = typer.Option(None, "--as-of", help="Snapshot time for --data (default: last event)."),
    features_dir: Path | None = DirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Register entities, sources and feature views in the registry (idempotent)."""
    from feature_repo.config import check_target
    from seren.data import load_dataset

    when = _parse_time(as_of, "--as-of")
    check_feature_dir(features_dir)
    check_target(target, features_dir)  # bad target / Redis down: fail before any write
    ds = load_dataset(data) if data is not None else None

    from feature_repo import store as fs

    store = fs.get_store(target, features_dir)
    written = fs.write_offline(ds, fs.data_dir_of(store), as_of=when) if ds is not None else {}
    objects = fs.apply(store)
    out = {
        "target": fs.resolve_target(target),
        "features_dir": str(fs.data_dir_of(store)),
        "applied": objects,
        "offline_tables": {k: str(v) for k, v in written.items()},
    }
    human = f"applied {len(objects)} objects to {out['features_dir']} (target {out['target']})"
    if written:
        human += f"; wrote {len(written)} offline tables"
    emit(out, as_json, human)


@app.command("materialize")
def materialize_cmd(
    target: str | None = TargetOpt,
    end: str | None = typer.Option(None, "--end", help="Load rows up to this time (default: now)."),
    view: list[str] | None = typer.Option(None, "--view", help="Only these views (repeatable)."),
    features_dir: Path | None = DirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Load the latest offline row per entity into the online store."""
    import time

    from feature_repo.config import check_target
    from feature_repo.schema import VIEWS, check_view

    end_t = _parse_time(end, "--end")
    names = list(view) if view else list(VIEWS)
    for v in names:
        check_view(v)
    check_target(target, features_dir)
    check_feature_dir(features_dir, need_store=True, target=target)

    from feature_repo import store as fs

    store = fs.get_store(target, features_dir)
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    for v in progress(names, total=len(names), desc="materializing"):
        counts.update(fs.materialize(store, end=end_t, views=[v]))
    secs = time.perf_counter() - t0
    out = {"target": fs.resolve_target(target), "rows": counts, "seconds": round(secs, 3)}
    human = "materialized " + ", ".join(f"{k}={n}" for k, n in counts.items()) + f" in {secs:.1f}s"
    emit(out, as_json, human)


@app.command("get")
def get_cmd(
    view: str = typer.Option(..., "--view", help="Feature view, e.g. user_stats."),
    ids: str = typer.Option(..., "--ids", help="Comma-separated entity ids."),
    max_age: str | None = typer.Option(None, "--max-age", help="Mark rows older than this stale (e.g. 1d)."),
    target: str | None = TargetOpt,
    features_dir: Path | None = DirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Read online features; each row says ok, stale or missing."""
    from feature_repo.config import check_target
    from feature_repo.schema import check_view

    check_view(view)
    id_list = [i.strip() for i in ids.split(",") if i.strip()]
    if not id_list:
        raise ConfigError("--ids is empty", "pass comma-separated ids, e.g. --ids u00001,u00002")
    age = parse_age(max_age) if max_age else None
    check_target(target, features_dir)
    check_feature_dir(features_dir, need_store=True, target=target)  # a read never creates a store

    from feature_repo import store as fs

    df = fs.get_online(fs.get_store(target, features_dir), view, id_list, max_age=age)
    records = json.loads(df.to_json(orient="records", date_format="iso"))
    if as_json:
        emit({"view": view, "rows": records}, True)
        return
    from rich.console import Console
    from rich.table import Table

    key = df.columns[0]
    table = Table(title=f"{view} (online)")  # one column per entity: views are wide, batches short
    table.add_column(key, style="bold")
    for r in records:
        table.add_column(str(r[key]), overflow="fold")
    for c in df.columns[1:]:
        table.add_row(c, *("" if r[c] is None else str(r[c]) for r in records))
    Console().print(table)
