"""Shared CLI helpers: JSON output and progress bars."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")

JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")
ForceOpt = typer.Option(
    False, "--force", help="Replace --out even when it is a non-empty directory seren did not write (deletes it)."
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
