"""The `seren` command.

Each command group lives in its own module under `seren/commands/` and exposes `app` (a
typer.Typer) and `NAME`; top-level commands expose `register(root_app)`. Modules are discovered
here, so adding a capability never means editing this file.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import sys

import typer

from seren import __version__, commands
from seren.errors import SerenError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(
    name="seren",
    help="LLM-powered serendipity and interest-exploration recommendation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"seren {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def _discover() -> None:
    for mod_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if mod_info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{commands.__name__}.{mod_info.name}")
        if hasattr(mod, "register"):
            mod.register(app)
        if hasattr(mod, "app"):
            app.add_typer(mod.app, name=getattr(mod, "NAME", mod_info.name), help=mod.__doc__)


_discover()


def main(argv: list[str] | None = None) -> None:
    """Entry point: SerenError -> one line on stderr and its exit code, never a traceback."""
    try:
        rc = app(args=argv, standalone_mode=False)
    except SerenError as exc:
        typer.echo(f"error: {exc.line()}", err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    # Non-standalone click returns a typer.Exit's code instead of exiting: honour it.
    if isinstance(rc, int) and rc:
        sys.exit(rc)


if __name__ == "__main__":
    main()
