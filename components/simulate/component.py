"""Closed-loop simulation of seren's slots on the synthetic world (arms, rounds, lifts with 95%
intervals), optionally a world sweep and a MovieLens replay; an HTML report artifact."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Metrics, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def simulate(
    report: Output[HTML],
    result: Output[Artifact],
    metrics: Output[Metrics],
    n_users: int = 1000,
    n_items: int = 800,
    rounds: int = 20,
    k: int = 10,
    retrain_every: int = 5,
    n_candidates: int = 30,
    judge: str = "behaviour",
    model_dir: str = "",
    hidden_sibling_share: float = 1.0,
    sweep_shares: str = "",
    replay_dir: str = "",
    seed: int = 0,
) -> str:
    """Returns the plain-text lift table. judge: behaviour | heuristic | serengpt (model_dir);
    sweep_shares: "1.0,0.5,0.0" also runs those worlds; replay_dir: a MovieLens folder or ""."""
    import json
    from pathlib import Path

    from seren.simulation.engine import SimConfig
    from seren.simulation.run import run_simulation

    cfg = SimConfig(n_users=n_users, n_items=n_items, rounds=rounds, k=k, retrain_every=retrain_every,
                    n_candidates=n_candidates, judge=judge, model_dir=model_dir,
                    hidden_sibling_share=hidden_sibling_share, seed=seed)  # fmt: skip
    shares = [float(x) for x in sweep_shares.split(",") if x.strip()]
    out = Path(report.path).parent / "simulation_report"
    summary = run_simulation(cfg, shares, replay_path=replay_dir or None, out_dir=out)
    Path(report.path).write_text(Path(summary["report"]["html"]).read_text())
    Path(result.path).write_text(Path(summary["report"]["json"]).read_text())
    for arm, row in summary["result"]["table"].items():
        for m, cell in row.items():
            if "lift" in cell:
                metrics.log_metric(f"{arm}.{m}.lift", round(cell["lift"], 4))
    result.metadata.update({"judge": summary["result"]["judge_label"], "acceptance": json.dumps(summary["acceptance"])})
    return summary["text"]
