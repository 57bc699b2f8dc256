"""Shared CLI helpers: JSON output, progress bars, and input checks shared by several commands."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from seren.errors import ConfigError

T = TypeVar("T")

JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")
ForceOpt = typer.Option(
    False, "--force", help="Replace --out even when it is a non-empty directory seren did not write (deletes it)."
)


def parse_time(text: str, opt: str) -> Any:
    """An ISO time for option `opt` -> pandas Timestamp; one-line errors for unparsable, empty (NaT)
    and out-of-range times (pandas holds 1677-09-22 .. 2262-04-11: later ones overflow downstream)."""
    import pandas as pd

    fix = "use ISO 8601 between 1970 and 2262, e.g. 2024-02-29T12:00:00Z"
    try:
        t = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        raise ConfigError(f"{opt}: cannot parse time {text!r}", fix) from None
    if t is pd.NaT or pd.isna(t):
        raise ConfigError(f"{opt}: {text!r} is not a time", fix)
    try:
        t = t.as_unit("ns")
        t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    except (ValueError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        raise ConfigError(f"{opt}: time {text!r} is out of range", fix) from None
    return t


def check_feature_dir(
    features_dir: Path | None, need_store: bool = False, target: str | None = None, opt: str = "--features-dir"
) -> None:
    """`--features-dir` must be a directory (or missing); with `need_store` the store must exist already,
    so a read (`features get`, `recommend`) never creates one."""
    if features_dir is not None:
        p = Path(features_dir)
        if p.exists() and not p.is_dir():
            raise ConfigError(f"{opt} {p} is a file, not a directory", "pass the feature data directory")
        for parent in Path(os.path.abspath(p)).parents:
            if parent.exists():
                if not parent.is_dir():
                    raise ConfigError(f"{opt} {p}: {parent} is a file", "pass a path under a directory")
                break
    if not need_store:
        return
    from feature_repo.config import default_data_dir, render_config

    raw = render_config(target, features_dir)
    reg = raw.get("registry")
    reg_path = reg.get("path") if isinstance(reg, dict) else reg
    if isinstance(reg_path, str) and "://" not in reg_path and not Path(reg_path).is_file():
        where = features_dir or default_data_dir()
        raise ConfigError(
            f"no feature store in {where} (no registry at {reg_path})",
            f"run `seren features apply --data DATASET{'' if features_dir is None else f' --features-dir {where}'}` "
            "and `seren features materialize` first",
        )


def emit(obj: object, as_json: bool, human: str | None = None) -> None:
    """Print JSON for machines, or the human line when one is given."""
    if as_json or human is None:
        typer.echo(json.dumps(obj, indent=2, default=str))
    else:
        typer.echo(human)


def progress(it: Iterable[T], total: int | None = None, desc: str = "working") -> Iterator[T]:
    """A rich progress bar on stderr, so --json output on stdout stays clean."""
    cols = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*cols, transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(desc, total=total)
        for x in it:
            yield x
            bar.advance(task)
