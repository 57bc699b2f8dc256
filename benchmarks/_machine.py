"""How quiet the machine was while a benchmark ran: the one record every benchmark JSON carries.

The 1-minute load average alone cannot tell a quiet run from a contended one here: a benchmark that
uses both cores of this 2-core machine drives the load to ~2 by itself. So besides the load at start
and end, the record splits the CPU time spent during the run into this process tree's own
(`own_cores`) and everybody else's (`foreign_cores`, averaged over the wall time): a run is trustworthy
when it started below 1.0 and `foreign_cores` stayed small.

    with Quiet("scorer") as q:
        ... measure ...
    result["quiet"] = q.record
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import Any

import psutil

MAX_START_LOAD = 1.0


def _busy_seconds() -> float:
    t = psutil.cpu_times()
    return sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))


def _own_seconds() -> float:
    me = psutil.Process()
    c = me.cpu_times()
    total = c.user + c.system + c.children_user + c.children_system
    for child in me.children(recursive=True):
        try:
            cc = child.cpu_times()
            total += cc.user + cc.system
        except psutil.Error:
            continue
    return total


class Quiet:
    """Wait for a quiet machine (1-min load < 1.0), then account the CPU used during the block."""

    def __init__(self, name: str, *, max_start_load: float = MAX_START_LOAD, wait_s: float = 900.0) -> None:
        self.name, self.max_start_load, self.wait_s = name, max_start_load, wait_s
        self.record: dict[str, Any] = {}

    def __enter__(self) -> Quiet:
        deadline = time.monotonic() + self.wait_s
        while os.getloadavg()[0] >= self.max_start_load and time.monotonic() < deadline:
            print(f"{self.name}: waiting for a quiet machine (load {os.getloadavg()[0]:.2f})", file=sys.stderr)
            time.sleep(15)
        self._load0 = os.getloadavg()
        self._t0, self._busy0, self._own0 = time.monotonic(), _busy_seconds(), _own_seconds()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> Quiet:
        """For scripts whose measured part is not one block: `q = Quiet(name).start()` ... `q.stop()`."""
        return self.__enter__()

    def stop(self) -> dict[str, Any]:
        """End the accounting (once) and return the record."""
        if self.record:
            return self.record
        wall = max(time.monotonic() - self._t0, 1e-9)
        own = max(_own_seconds() - self._own0, 0.0)
        busy = max(_busy_seconds() - self._busy0, 0.0)
        load1 = os.getloadavg()
        self.record = {
            "load": {
                "loadavg_1m_start": round(self._load0[0], 2),
                "loadavg_1m_end": round(load1[0], 2),
                "loadavg_start": [round(x, 2) for x in self._load0],
                "loadavg_end": [round(x, 2) for x in load1],
            },
            "cpu": {
                "wall_s": round(wall, 1),
                "own_cores": round(own / wall, 2),
                "foreign_cores": round(max(busy - own, 0.0) / wall, 2),
                "cpus": os.cpu_count(),
            },
            "quiet_at_start": self._load0[0] < self.max_start_load,
            "note": "the end load includes this benchmark's own threads (cpu.own_cores); cpu.foreign_cores is the "
            "mean number of cores other processes used during the run",
        }
        return self.record
