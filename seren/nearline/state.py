"""The nearline watermark: the event time up to which every user's events have been pushed.

Local: ``<feature data dir>/nearline/watermark.json`` (``feature_repo.store.data_dir_of``), written
atomically (temp file + rename via ``seren.io``). Production keeps the same JSON at a ``gs://``
URI (``state_uri="gs://bucket/prefix"``): a GCS object upload is atomic, so the same
"readers see the old or the new watermark, never half" guarantee holds there.

The watermark moves only after a run's pushes succeeded; a run lock (fcntl, local) keeps two
runs of one store from processing the same window at once (the OS drops it when a run dies).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from seren.errors import ConfigError, DataError
from seren.io import write_json

WATERMARK_FILE = "watermark.json"
LOCK_FILE = ".run.lock"
_GS = re.compile(r"^gs://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(?:/(.*))?$")


def nearline_dir(feature_data_dir: str | os.PathLike[str]) -> Path:
    """Where the local state lives: next to the Feast repo data it describes."""
    return Path(feature_data_dir) / "nearline"


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


class WatermarkStore:
    """Read/write the watermark JSON at a local dir or a gs:// prefix."""

    def __init__(self, location: str | os.PathLike[str]) -> None:
        self.location = str(location)
        self._gs = _GS.match(self.location.strip()) if self.location.startswith("gs://") else None
        if self.location.startswith("gs://") and not self._gs:
            raise ConfigError(f"invalid GCS URI {self.location!r}", "use gs://BUCKET or gs://BUCKET/PREFIX")

    @property
    def uri(self) -> str:
        if self._gs:
            prefix = (self._gs.group(2) or "").strip("/")
            return f"gs://{self._gs.group(1)}/" + "/".join(p for p in (prefix, WATERMARK_FILE) if p)
        return str(Path(self.location) / WATERMARK_FILE)

    def _blob(self) -> Any:
        from seren.gcs import gcs_client

        assert self._gs is not None
        prefix = (self._gs.group(2) or "").strip("/")
        key = "/".join(p for p in (prefix, WATERMARK_FILE) if p)
        return gcs_client().bucket(self._gs.group(1)).blob(key)

    def read(self) -> dict[str, Any] | None:
        """The stored record, or None before the first successful run."""
        if self._gs:
            from google.api_core import exceptions as gexc

            from seren.gcs import gcs_errors

            with gcs_errors("read the nearline watermark", self.uri):
                try:
                    text = self._blob().download_as_text()
                except gexc.NotFound:
                    return None
        else:
            f = Path(self.uri)
            if not f.is_file():
                return None
            text = f.read_text()
        try:
            rec = json.loads(text)
            _utc(rec["watermark"])
        except (ValueError, KeyError, TypeError):
            raise DataError(
                f"nearline watermark {self.uri} is unreadable",
                "delete it to reprocess every user, or restore it from the last run's summary",
            ) from None
        return rec

    def watermark(self) -> pd.Timestamp | None:
        rec = self.read()
        return None if rec is None else _utc(rec["watermark"])

    def write(self, watermark: Any, **info: Any) -> dict[str, Any]:
        rec = {
            "watermark": _utc(watermark).isoformat(),
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            **info,
        }
        if self._gs:
            from seren.gcs import gcs_errors

            with gcs_errors("write the nearline watermark", self.uri):
                self._blob().upload_from_string(json.dumps(rec, indent=2), content_type="application/json")
        else:
            write_json(Path(self.uri), rec)
        return rec

    @contextlib.contextmanager
    def run_lock(self, lock_dir: str | os.PathLike[str]) -> Iterator[None]:
        """One run at a time per store (fails at once, naming the holder, when another run is busy)."""
        from seren.locks import file_lock

        with file_lock(Path(lock_dir) / LOCK_FILE, blocking=False):
            yield
