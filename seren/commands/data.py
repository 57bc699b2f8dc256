"""Generate, import and validate datasets (canonical parquet tables)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from seren.commands._common import ForceOpt, JsonOpt, emit
from seren.errors import ConfigError
from seren.io import check_out_dir

NAME = "data"
app = typer.Typer(no_args_is_help=True, help=__doc__)
_err = Console(stderr=True)

# The generator keeps every exposure in memory (~100 bytes each): refuse sizes that cannot fit before
# allocating anything. Larger real logs come in through `seren data import-csv`.
MAX_USERS = 1_000_000
MAX_ITEMS = 1_000_000
MAX_EVENTS = 50_000_000
MAX_DAYS = 36_500


def check_generate_sizes(users: int, items: int, days: int, events_per_user: int, shift: float) -> None:
    """One-line errors for sizes the synthetic generator cannot (or should not) allocate."""
    import math

    for opt, value, limit in (("--users", users, MAX_USERS), ("--items", items, MAX_ITEMS), ("--days", days, MAX_DAYS)):
        if value > limit:
            raise ConfigError(
                f"{opt} {value} is above the generator's limit of {limit:,}",
                f"pass {opt} <= {limit} (the synthetic world is held in memory); import larger real logs "
                "with `seren data import-csv`",
            )
    if users > 0 and events_per_user > MAX_EVENTS // users:
        raise ConfigError(
            f"--users {users} x --events-per-user {events_per_user} exposures is above the limit of {MAX_EVENTS:,}",
            "lower --users or --events-per-user",
        )
    if not math.isfinite(shift):
        raise ConfigError(f"--shift {shift} is not a finite number", "pass a number >= 0, e.g. --shift 0.5")


@contextlib.contextmanager
def _status(msg: str) -> Iterator[None]:
    """A spinner on stderr (stdout stays clean for --json)."""
    with _err.status(msg):
        yield


def _summary(ds: object, out: Path | None, seconds: float | None = None) -> dict[str, object]:
    from seren.data import is_positive

    tables = {n: int(len(t)) for n in ("interactions", "items", "users", "labels") if (t := getattr(ds, n)) is not None}
    inter = ds.interactions  # type: ignore[attr-defined]
    info: dict[str, object] = {
        "tables": tables,
        "n_users": int(inter["user_id"].nunique()),
        "n_items_interacted": int(inter["item_id"].nunique()),
        "positive_share": round(float(is_positive(inter).mean()), 4),
        "time_range": [str(inter["timestamp"].min()), str(inter["timestamp"].max())],
        "categories": int(ds.items["category"].nunique()),  # type: ignore[attr-defined]
    }
    labels = ds.labels  # type: ignore[attr-defined]
    if labels is not None and len(labels):
        info["label_positive_share"] = round(float(labels["serendipitous"].mean()), 4)
    if out is not None:
        info["out"] = str(out)
    if seconds is not None:
        info["seconds"] = round(seconds, 2)
    return info


def _human(info: dict[str, object], verb: str) -> str:
    tables = info["tables"]
    counts = ", ".join(f"{k}={v}" for k, v in tables.items())  # type: ignore[union-attr]
    lines = [f"{verb}: {counts}"]
    lines.append(
        f"  users={info['n_users']} items_interacted={info['n_items_interacted']} categories={info['categories']} "
        f"positive_share={info['positive_share']}"
    )
    if "label_positive_share" in info:
        lines.append(f"  serendipitous label share={info['label_positive_share']}")
    lines.append(f"  time range {info['time_range'][0]} .. {info['time_range'][1]}")  # type: ignore[index]
    if "out" in info:
        lines.append(f"  written to {info['out']}")
    return "\n".join(lines)


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", help="Dataset directory to write (replaced atomically)."),
    users: int = typer.Option(500, "--users", help="Number of users."),
    items: int = typer.Option(800, "--items", help="Number of catalogue items."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same dataset."),
    days: int = typer.Option(60, "--days", help="Time span of the behaviour logs."),
    events_per_user: int = typer.Option(60, "--events-per-user", help="Mean exposures per user."),
    n_top: int = typer.Option(8, "--n-top", help="Top-level categories."),
    n_sub: int = typer.Option(5, "--n-sub", help="Subcategories per top category."),
    shift: float = typer.Option(0.0, "--shift", help="Population shift (>0: more curious users, other interests)."),
    force: bool = ForceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Generate the seeded synthetic dataset (catalogue, users, feedback-loop logs, ground-truth labels)."""
    check_generate_sizes(users, items, days, events_per_user, shift)
    check_out_dir(out, force)  # before minutes of simulation, not after
    from seren.data import save_dataset
    from seren.data.ingest import load_source

    cfg = dict(
        n_users=users,
        n_items=items,
        seed=seed,
        days=days,
        events_per_user=events_per_user,
        n_top=n_top,
        n_sub=n_sub,
        shift=shift,
    )
    t0 = time.perf_counter()
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*cols, console=_err, transient=True) as bar:
        task = bar.add_task("simulating exposures", total=None)
        ds = load_source(
            "synthetic", synthetic=cfg, on_step=lambda done, total: bar.update(task, completed=done, total=total)
        )
    with _status(f"writing {out}"):
        save_dataset(ds, out, force=force)
    info = _summary(ds, out, time.perf_counter() - t0)
    emit(info, as_json, _human(info, "generated"))


@app.command()
def validate(
    path: Path = typer.Argument(..., help="Dataset directory (written by generate or an import)."),
    as_json: bool = JsonOpt,
) -> None:
    """Validate every table of a dataset; prints table counts or exits 2 with a one-line error."""
    from seren.data import load_dataset

    t0 = time.perf_counter()
    with _status(f"validating {path}"):
        ds = load_dataset(path)
    info = _summary(ds, None, time.perf_counter() - t0)
    info["path"] = str(path)
    emit({"valid": True, **info}, as_json, _human(info, f"valid dataset {path}"))


@app.command("import-movielens")
def import_movielens(
    src: Path = typer.Argument(..., help="MovieLens folder with ratings.csv, movies.csv (tags.csv optional)."),
    out: Path = typer.Option(..., "--out", help="Dataset directory to write (replaced atomically)."),
    min_tag_count: int = typer.Option(1, "--min-tag-count", help="Ignore tags used fewer times on a movie."),
    force: bool = ForceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Import a MovieLens export (ml-latest, ml-latest-small, ml-25m format)."""
    check_out_dir(out, force)
    from seren.data import save_dataset
    from seren.data.ingest import load_source

    t0 = time.perf_counter()
    with _status(f"reading MovieLens from {src}"):
        ds = load_source("movielens", src, min_tag_count=min_tag_count)
    with _status(f"writing {out}"):
        save_dataset(ds, out, force=force)
    info = _summary(ds, out, time.perf_counter() - t0)
    emit(info, as_json, _human(info, "imported MovieLens"))


def parse_mapping(pairs: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """['user_id=uid', 'items.title=name'] -> (interactions mapping, items mapping)."""
    from seren.data.adapters import INTERACTION_COLUMNS, ITEM_COLUMNS

    inter: dict[str, str] = {}
    items: dict[str, str] = {}
    for pair in pairs:
        key, sep, src = pair.partition("=")
        key, src = key.strip(), src.strip()
        if not sep or not key or not src:
            raise ConfigError(f"bad --map value {pair!r}", "use --map canonical=source, e.g. --map user_id=customer")
        table, dot, canon = key.rpartition(".")
        if dot and table not in ("interactions", "items"):
            raise ConfigError(
                f"bad --map prefix {table!r} in {pair!r}", "prefix with 'interactions.' or 'items.' or nothing"
            )
        known = (table in ("", "interactions") and canon in INTERACTION_COLUMNS) or (
            table in ("", "items") and canon in ITEM_COLUMNS
        )
        if not known:
            allowed = sorted(set(INTERACTION_COLUMNS) | set(ITEM_COLUMNS))
            raise ConfigError(
                f"unknown canonical column {canon!r} in --map {pair!r}", f"map one of {', '.join(allowed)}"
            )
        if table in ("", "interactions") and canon in INTERACTION_COLUMNS:
            inter[canon] = src
        if table in ("", "items") and canon in ITEM_COLUMNS:
            items[canon] = src
    return inter, items


@app.command("import-csv")
def import_csv(
    interactions: Path = typer.Option(..., "--interactions", help="Interactions file (.csv, .tsv or .parquet)."),
    out: Path = typer.Option(..., "--out", help="Dataset directory to write (replaced atomically)."),
    items: Path | None = typer.Option(None, "--items", help="Item catalogue file; derived from the ids if omitted."),
    mapping: list[str] = typer.Option(
        [], "--map", help="canonical=source column (repeatable); prefix 'items.' / 'interactions.' to target one file."
    ),
    event_default: str = typer.Option("rating", "--event-default", help="Event type when there is no event column."),
    force: bool = ForceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Import your own logs: map columns onto the canonical schema, validate, write a dataset."""
    from seren.data import save_dataset
    from seren.data.ingest import load_source

    inter_map, item_map = parse_mapping(mapping)
    check_out_dir(out, force)
    t0 = time.perf_counter()
    with _status(f"reading {interactions} and {items or 'item ids'}"):
        ds = load_source(
            "csv",
            interactions,
            items_path=items,
            mapping=inter_map,
            items_mapping=item_map,
            event_default=event_default,
        )
    with _status(f"writing {out}"):
        save_dataset(ds, out, force=force)
    info = _summary(ds, out, time.perf_counter() - t0)
    emit(info, as_json, _human(info, "imported"))
