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
from seren.errors import SerenError, ServiceError

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


def _usage_line(exc: Exception) -> str:
    """A click/typer usage error as `<problem>. Fix: <fix>` on one line (never the usage block)."""
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "seren"
    fmt = getattr(exc, "format_message", None)
    problem = " ".join(str(fmt() if fmt else exc).split()).rstrip(".") or type(exc).__name__
    return f"{where}: {problem}. Fix: see '{where} --help'"


def _os_line(exc: OSError) -> tuple[str, int]:
    """An OSError that escaped a command (permissions, a full disk, a path that is a file): one line."""
    import errno

    what = exc.strerror or type(exc).__name__
    where = f" {exc.filename}" if exc.filename else ""
    if isinstance(exc, ConnectionError | TimeoutError):
        return f"{what}{where}. Fix: check that the server is running and reachable", ServiceError.exit_code
    fix = "free disk space and retry" if exc.errno == errno.ENOSPC else "check the path and its permissions"
    return f"{what}:{where}. Fix: {fix}", 2


def main(argv: list[str] | None = None) -> None:
    """Entry point: every user-facing failure -> one line `error: <problem>. Fix: <fix>` on stderr and a
    non-zero exit (2 for usage/input errors), never a traceback.

    typer 0.29 vendors click as `typer._click`: its usage errors are not `click.ClickException`s, so
    both hierarchies are caught (a command that imports the real click may still raise those).
    """
    from typer._click import exceptions as tce

    click_errors: tuple[type[BaseException], ...] = (tce.ClickException,)
    try:
        import click

        click_errors += (click.ClickException,)
    except ImportError:  # pragma: no cover - click is a dependency of several of ours
        pass
    try:
        rc = app(args=argv, prog_name="seren", standalone_mode=False)
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
    except tce.NoArgsIsHelpError as exc:  # `seren` / `seren data` alone: the help is the answer
        exc.show()
        sys.exit(2)
    except click_errors as exc:
        code = getattr(exc, "exit_code", 2)
        typer.echo(f"error: {_usage_line(exc)}", err=True)
        sys.exit(code if isinstance(code, int) and code else 2)
    except OSError as exc:
        line, code = _os_line(exc)
        typer.echo(f"error: {line}", err=True)
        sys.exit(code)
    # Non-standalone click returns a typer.Exit's code instead of exiting: honour it.
    if isinstance(rc, int) and rc:
        sys.exit(rc)


if __name__ == "__main__":
    main()
