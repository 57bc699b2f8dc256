"""Local runs with kfp.local (SubprocessRunner, no venv, no Docker): stdout teed to the run log and
scraped for task start/finish and `seren.progress` lines, outputs and per-task metrics collected
from the executor files, failures turned into one line naming the task.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pipelines.framework.discover import kfp_name, load, pipeline_version
from pipelines.framework.params import coerce_params
from seren import progress
from seren.errors import SerenError
from seren.io import write_json
from seren.paths import pipeline_runs_dir

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")

EventCallback = Callable[[str, str, str], None]


class _LogTee(io.TextIOBase):
    """Sends kfp.local's stdout to the run log and reports task start/finish to a callback."""

    _start = re.compile(r"Executing task '?([^'\s]+)'?")
    _done = re.compile(r"Task '?([^'\s]+)'? finished with status (\w+)")

    def __init__(self, fh: TextIO, on_event: EventCallback | None) -> None:
        self.fh = fh
        self.on_event = on_event
        self._buf = ""
        self._task = ""

    def write(self, s: str) -> int:
        # A library imported during the run (Feast) may bind a logging handler to sys.stdout, i.e. to
        # this tee, and keep it after the run: drop its late lines instead of a "Logging error" trace.
        if self.fh.closed:
            return len(s)
        self.fh.write(s)
        if self.on_event is not None:
            self._buf += s
            *lines, self._buf = self._buf.split("\n")
            for line in lines:
                clean = _ANSI_RE.sub("", line)
                if m := self._done.search(clean):
                    self.on_event("done", m.group(1), m.group(2))
                elif m := self._start.search(clean):
                    self._task = m.group(1)
                    self.on_event("start", m.group(1), "")
                elif (event := progress.parse(clean)) is not None:
                    # a component's `seren.progress` line: kind "progress", detail "sft 12/144  loss ..  ETA .."
                    self.on_event("progress", self._task, progress.describe(event))
        return len(s)

    def flush(self) -> None:
        if not self.fh.closed:
            self.fh.flush()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "uri") and hasattr(value, "metadata"):
        return {"uri": value.uri, "path": getattr(value, "path", value.uri), "metadata": dict(value.metadata)}
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return value
    return str(value)


def _collect_tasks(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per task: output parameters and artifacts (uri + metadata, i.e. the logged metrics)."""
    tasks: dict[str, dict[str, Any]] = {}
    for f in sorted(run_dir.rglob("executor_output.json"), key=lambda f: f.stat().st_mtime):  # execution order
        data = json.loads(f.read_text())
        arts = {
            name: {"uri": a["artifacts"][0].get("uri"), "metadata": a["artifacts"][0].get("metadata", {})}
            for name, a in data.get("artifacts", {}).items()
            if a.get("artifacts")
        }
        tasks[f.parent.relative_to(run_dir).as_posix()] = {
            "parameters": data.get("parameterValues", {}),
            "artifacts": arts,
        }
    return tasks


def _failure(name: str, exc: Exception, log_path: Path) -> SerenError:
    """Turn kfp.local's RuntimeError into one line naming the task and the component's own error."""
    message = _ANSI_RE.sub("", str(exc)).strip()
    task = re.search(r"Inner task failed: '([^']+)'", message) if isinstance(exc, RuntimeError) else None
    inner = ""
    if task:
        for line in reversed(_ANSI_RE.sub("", log_path.read_text(errors="replace")).splitlines()):
            m = re.match(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$", line)
            if m:
                inner = m.group(2).strip()
                break
    problem, _, fix = inner.partition(". Fix: ")
    where = f" in task {task.group(1)!r}" if task else ""
    return SerenError(
        f"pipeline {kfp_name(name)} failed{where}: {problem or f'{type(exc).__name__}: {message}'}",
        f"{fix.rstrip('.')} (full log: {log_path})" if fix else f"see the full log {log_path}",
    )


def run_local(
    name: str,
    params: dict[str, Any] | None = None,
    *,
    pipeline_root: str | os.PathLike[str] | None = None,
    on_event: EventCallback | None = None,
) -> dict[str, Any]:
    """Run a pipeline with kfp.local in this interpreter (SubprocessRunner, no venv, no Docker).

    Arguments are DEFAULT_PARAMS overridden by `params`. Returns the pipeline's outputs and, per
    task, its output parameters and artifacts (with metrics), plus where the run's files and log
    are; the same summary is written to `<pipeline_root>/result.json`.
    """
    from kfp import local
    from kfp.local import config as local_config

    info = load(name)
    args = coerce_params(info, {**info.default_params, **(params or {})})
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S-%fZ")
    root = Path(pipeline_root) if pipeline_root is not None else pipeline_runs_dir() / name / stamp
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "run.log"
    version = pipeline_version()

    previous = getattr(local_config.LocalExecutionConfig, "instance", None)
    previous_env = os.environ.get(progress.ENV)
    os.environ[progress.ENV] = "1"  # components (subprocesses) print progress lines the tee forwards
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    try:
        with open(log_path, "w") as fh, contextlib.redirect_stdout(_LogTee(fh, on_event)), warnings.catch_warnings():
            # kfp.local warns that display names are ignored locally and that the image is "not python"
            warnings.filterwarnings("ignore", module=r"kfp\.local")
            try:
                task = info.pipeline(**args)
            except Exception as exc:  # kfp.local raises RuntimeError naming the failed task
                fh.flush()
                raise _failure(name, exc, log_path) from None
    finally:
        local_config.LocalExecutionConfig.instance = previous
        if previous_env is None:
            os.environ.pop(progress.ENV, None)
        else:
            os.environ[progress.ENV] = previous_env

    runs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    run_dir = runs[-1] if runs else root
    result = {
        "pipeline": info.kfp_name,
        "version": version,
        "params": args,
        "pipeline_root": str(root),
        "run_dir": str(run_dir),
        "log": str(log_path),
        "outputs": {k: _jsonable(v) for k, v in (task.outputs or {}).items()},
        "tasks": _collect_tasks(run_dir),
    }
    write_json(root / "result.json", result)
    return result
