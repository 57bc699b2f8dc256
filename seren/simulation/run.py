"""One entry point for the CLI, the KFP component, the demo and the benchmark: simulate (and
optionally sweep the world and replay MovieLens), then write the report."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from seren.simulation.engine import SimConfig, acceptance, simulate, sweep
from seren.simulation.report import lift_text, write_report

QUICK = {"n_users": 200, "n_items": 400, "rounds": 8, "retrain_every": 4, "n_boot": 300}
SWEEP_SHARES = (1.0, 0.5, 0.0)


def run_simulation(
    cfg: SimConfig,
    sibling_shares: Sequence[float] = (),
    curiosity_means: Sequence[float | None] = (None,),
    replay_path: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    name: str = "simulation",
    on_round: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Simulate `cfg`; with `sibling_shares`, also sweep the world; with `replay_path`, replay
    MovieLens. Writes <out_dir or SEREN_HOME/reports>/<name>.html/.json; returns the summary."""
    cfg.validate()
    result = simulate(cfg, on_round)
    rows = sweep(cfg, sibling_shares, curiosity_means, on_round) if sibling_shares else None
    rep = None
    if replay_path:
        from seren.simulation.replay import replay

        rep = replay(replay_path, k=cfg.k, seed=cfg.seed, n_boot=cfg.n_boot)
    paths = write_report(result, out_dir, name, rows, rep)
    return {
        "result": result,
        "acceptance": acceptance(result),
        "sweep": rows,
        "replay": rep,
        "report": {k: str(v) for k, v in paths.items()},
        "text": lift_text(result),
    }


def quick_config(**overrides: Any) -> SimConfig:
    """The small fast configuration (`seren simulate --quick`, the demo)."""
    return dataclasses.replace(SimConfig(**QUICK), **overrides)


def report_path(summary: dict[str, Any]) -> Path:
    return Path(summary["report"]["html"])
