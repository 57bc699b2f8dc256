"""`seren demo`: the end-to-end local demo (what `make demo` runs)."""

from __future__ import annotations

import typer

from seren.commands._common import JsonOpt, emit


def demo(
    quick: bool = typer.Option(
        False, "--quick", help="Tiny random model and small data: minutes, not tens of minutes."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Run features -> SerenGPT training -> Triton serving -> exploration -> nearline -> monitoring -> recommend, locally."""
    from seren.demo import run_demo

    summary = run_demo(quick=quick, say=(lambda s: None) if as_json else typer.echo)
    if as_json:
        emit(summary, True)


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
