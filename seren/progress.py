"""Progress events of long stages (training steps), readable by whoever runs the stage.

A stage calls `emit(stage, step, total, loss=...)`; when `SEREN_PROGRESS_EVENTS=1` is set (the local
pipeline runner sets it for its components) one line `SEREN_PROGRESS {json}` goes to stdout, which
kfp.local streams to the runner, and the runner draws a progress line (stage, step/total, loss,
ETA) on the terminal. Without the variable nothing is printed: stdout of a CLI may carry --json.
Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import Any

ENV = "SEREN_PROGRESS_EVENTS"
TAG = "SEREN_PROGRESS"
_LINE = re.compile(TAG + r" (\{.*\})")
_STARTS: dict[str, float] = {}


def enabled() -> bool:
    return os.environ.get(ENV, "") == "1"


def emit(stage: str, step: int, total: int, **fields: Any) -> dict[str, Any] | None:
    """Report step/total of `stage` (+ e.g. loss); the ETA is extrapolated from this stage's pace."""
    if not enabled():
        return None
    now = time.monotonic()
    t0 = _STARTS.setdefault(stage, now)
    if step <= 0:
        _STARTS[stage] = t0 = now
    elapsed = now - t0
    eta = elapsed / step * (total - step) if step > 0 and total >= step else None
    event = {"stage": stage, "step": int(step), "total": int(total), "elapsed_s": round(elapsed, 1)}
    event["eta_s"] = None if eta is None else round(eta, 1)
    event.update({k: (round(v, 5) if isinstance(v, float) else v) for k, v in fields.items()})
    sys.stdout.write(f"{TAG} {json.dumps(event, sort_keys=True)}\n")
    sys.stdout.flush()
    return event


def parse(line: str) -> dict[str, Any] | None:
    """The event in a line of (possibly prefixed) output, or None."""
    m = _LINE.search(line)
    if not m:
        return None
    try:
        event = json.loads(m.group(1))
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "stage" in event else None


def describe(event: dict[str, Any]) -> str:
    """'sft 12/144 loss 0.412 ETA 3m05s' for a terminal line."""
    parts = [f"{event.get('stage')} {event.get('step')}/{event.get('total')}"]
    if isinstance(event.get("loss"), int | float):
        parts.append(f"loss {event['loss']:.4f}")
    eta = event.get("eta_s")
    if isinstance(eta, int | float):
        m, s = divmod(int(round(eta)), 60)
        parts.append(f"ETA {m}m{s:02d}s")
    if isinstance(event.get("note"), str):  # e.g. what a stage decided before (or instead of) training
        parts.append(event["note"])
    return "  ".join(parts)


class Display:
    """One live line on the terminal (stderr) for progress events; on a non-terminal (a CI log) a
    plain line at most every `every_s` seconds and at the last step."""

    def __init__(self, every_s: float = 30.0) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.every_s = every_s
        self._status: Any = None
        self._last: float | None = None

    def update(self, task: str, text: str) -> None:
        line = f"   {task}: {text}"
        if self.console.is_terminal:
            if self._status is None:
                self._status = self.console.status(line)
                self._status.start()
            else:
                self._status.update(line)
            return
        now = time.monotonic()
        m = re.search(r" (\d+)/(\d+)", text)
        final = bool(m) and m.group(1) == m.group(2)
        if final or self._last is None or now - self._last >= self.every_s:
            self._last = now
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
