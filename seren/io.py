"""Atomic file writes: write to a temp file beside the target, then rename.

Platform layer (with paths, durations, errors, progress): every layer may use it; it imports only
seren.errors and seren.paths (tests/test_layering.py checks).

A reader (or a crashed writer's successor) sees either the old file or the new one, never a
half-written one. Used for every artifact the project persists.

Directories seren writes are *artifacts*: `atomic_dir` leaves a marker file (`.seren-artifact`)
in each (anything below SEREN_HOME or the model cache counts as seren's too). Replacing a directory
is allowed only when it is missing, empty or such an artifact; a non-empty directory without the
marker is the user's and is refused unless `force` (the CLI's `--force`). A target that is a file,
the current directory or one of its parents is always refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from seren.errors import ConfigError

ARTIFACT_MARKER = ".seren-artifact"
"""File `atomic_dir` writes into every directory it produces: how seren recognises its own output."""


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temp path in the target's directory; rename it over the target on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _owned_roots() -> list[Path]:
    """Directories that are seren's own state: SEREN_HOME and the shared model cache."""
    from seren.paths import seren_home

    cache = os.environ.get("SEREN_MODEL_CACHE", Path.home() / ".cache" / "seren" / "models")
    return [seren_home(), Path(cache).expanduser().resolve()]


def is_artifact(path: str | os.PathLike[str]) -> bool:
    """True when `path` is a directory seren wrote: it holds the artifact marker, or it lies inside
    SEREN_HOME or the model cache (state written before the marker existed)."""
    path = Path(path)
    if (path / ARTIFACT_MARKER).is_file():
        return True
    real = path.resolve()
    return any(root in real.parents for root in _owned_roots())


def check_out_dir(
    target: str | os.PathLike[str], force: bool = False, what: str = "--out", new_only: bool = False
) -> Path:
    """Refuse an output directory seren must not replace, before any work is done.

    Refused always: the current directory or one of its parents (`--out .`, `--out ..`), a path
    that is a file, a path below a file. Refused unless `force`: a non-empty directory that is not
    a seren artifact (a user's files would be deleted). `new_only`: also refuse a seren artifact
    (for writers that do not replace, e.g. a training run's output).
    """
    target = Path(target)
    full = Path(os.path.abspath(target))
    here = Path.cwd().resolve()
    real = full.resolve()
    if real == here or real in here.parents:
        raise ConfigError(
            f"{what} {str(target)!r} is the current directory or one of its parents, which seren would replace",
            f"pass a new directory, e.g. {what} ./out",
        )
    for parent in full.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise ConfigError(f"{what} {target}: {parent} is a file", f"pass a {what} path under a directory")
            break
    if not target.exists():
        return target
    if not target.is_dir():
        raise ConfigError(
            f"{what} {target} is a file, not a directory", f"pass a directory path, or move {target} away first"
        )
    if force or not any(target.iterdir()):
        return target
    if new_only or not is_artifact(target):
        raise ConfigError(
            f"{what} {target} is a non-empty directory seren did not write"
            if not is_artifact(target)
            else f"{what} {target} already holds seren output",
            "pass a new or empty directory, or add --force to replace it (its contents are deleted)",
        )
    return target


def check_out_file(target: str | os.PathLike[str], what: str = "--out") -> Path:
    """Refuse an output *file* path that is a directory or lies under a file, before any work is done."""
    target = Path(target)
    if target.is_dir():
        raise ConfigError(f"{what} {target} is a directory", f"pass a file path, e.g. {what} {target / 'out.parquet'}")
    for parent in Path(os.path.abspath(target)).parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{what} {target}: {parent} is a file", f"pass a {what} path under a directory")
            break
    return target


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str], force: bool = False, marker: bool = True) -> Iterator[Path]:
    """Yield a temp directory; swap it in place of `target` on success (old one removed).

    The target is checked (`check_out_dir`) before the block runs and again before the swap: a
    file, the current directory, or a non-empty directory seren did not write is never replaced
    unless `force`. `marker` writes `.seren-artifact` into the new directory.
    """
    target = Path(target)
    check_out_dir(target, force, what="output directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if marker:
            (tmp / ARTIFACT_MARKER).write_text("written by seren; this directory may be replaced by seren\n")
        check_out_dir(target, force, what="output directory")  # a user may have put files there meanwhile
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            if old.is_symlink():
                old.unlink()  # the link, never what it points to
            else:
                shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet(path: str | os.PathLike[str], df: pd.DataFrame) -> Path:
    with atomic_path(path, suffix=".parquet") as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)
