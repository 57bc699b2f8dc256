"""Does seren break the filter bubble? The closed-loop simulation at benchmark size, the world sweep,
and the MovieLens replay -> benchmarks/results/simulation.json (+ an HTML report beside it).

* default world: 1000 users, 20 rounds, k=10, retrain every 5 rounds, six arms, the behaviour-rate
  judge (the SerenGPT stand-in: SmolLM2 on this CPU scores a few items/s, a 1000 x 20 x 30
  candidates run would take days); the same world with the unexpectedness x relevance heuristic
  as the judge, to show what the judge contributes;
* sweep: sibling share of hidden interests 1.0 / 0.5 / 0.0 x population curiosity (generator
  default, 0.2, 0.6);
* MovieLens replay (ml-latest-small, when present).

Run inside the shared lock on a quiet machine; the load average is recorded at start and end.

    flock /tmp/seren-heavy.lock .venv/bin/python benchmarks/simulation.py [--users 1000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MOVIELENS = ROOT.parent / "shared" / "data" / "ml-latest-small"

from benchmarks._machine import Quiet  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "simulation.json")
    args = ap.parse_args()

    from seren.io import write_json
    from seren.simulation import SimConfig, acceptance, simulate, sweep
    from seren.simulation.replay import replay
    from seren.simulation.report import lift_text, write_report

    t0 = time.perf_counter()
    with Quiet("simulation") as quiet:
        base = SimConfig(n_users=args.users, rounds=args.rounds, seed=args.seed)
        main_res = simulate(base)
        heur = simulate(dataclasses.replace(base, judge="heuristic"))
        rows = sweep(base, (1.0, 0.5, 0.0), (None, 0.2, 0.6))
        rep = replay(MOVIELENS, seed=args.seed) if (MOVIELENS / "ratings.csv").is_file() else None
    load = quiet.record
    out = {
        "benchmark": "simulation",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "quiet": load,
        "seconds": round(time.perf_counter() - t0, 1),
        "default_world": {**main_res, "acceptance": acceptance(main_res)},
        "default_world_heuristic_judge": {
            "table": heur["table"],
            "seren_vs": heur["seren_vs"],
            "acceptance": acceptance(heur),
            "judge_label": heur["judge_label"],
        },
        "sweep": rows,
        "movielens_replay": rep if rep is not None else {"skipped": f"{MOVIELENS} not found"},
    }
    write_json(args.out, out)
    paths = write_report(main_res, args.out.parent, "simulation_report", rows, rep, machine=load)
    print(lift_text(main_res))
    print("acceptance:", acceptance(main_res))
    print("heuristic judge:\n" + lift_text(heur))
    for r in rows:
        s = r["table"]["seren"]
        print(
            f"share {r['hidden_sibling_share']} curiosity {r['curiosity_mean']:.2f}: "
            f"ser.clicks {s['serendipitous_clicks']['lift']:+.1%} hidden {s['hidden_interests_discovered']['lift']:+.1%} "
            f"clicks {s['total_clicks']['lift']:+.1%}  vs random ser.clicks "
            f"{r['seren_vs']['random_unexpected']['serendipitous_clicks']['lift']:+.1%}"
        )
    print(
        f"wrote {args.out} and {paths['html']}; load {load['load']['loadavg_1m_start']:.2f} -> {load['load']['loadavg_1m_end']:.2f}, "
        f"other processes {load['cpu']['foreign_cores']:.2f} cores"
    )


if __name__ == "__main__":
    main()
