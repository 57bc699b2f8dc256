"""Process-exclusive file locks (platform layer): the registry's promotions, the nearline watermark
and shard commits all serialise through `file_lock`."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seren.errors import SerenError


class ConflictError(SerenError):
    """Someone else changed the same thing first (a version number, a pointer, a promotion lock)."""

    exit_code = 4


@contextlib.contextmanager
def file_lock(path: Path, blocking: bool = True) -> Iterator[Any]:
    """An exclusive fcntl lock on `path` (created if needed); held until the block ends or the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip()
            raise ConflictError(
                f"{path} is locked by another process ({holder or 'unknown holder'})",
                "wait for it to finish and retry",
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {datetime.now(UTC).isoformat(timespec='milliseconds')}")
        fh.flush()
        yield fh
    finally:
        fh.close()  # releases the lock
