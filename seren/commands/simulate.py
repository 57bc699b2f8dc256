"""`seren simulate`: the closed-loop simulation of seren's slots (arms, rounds, lifts with 95%
intervals), optionally across worlds and replayed on MovieLens; writes an HTML + JSON report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from seren.commands._common import JsonOpt, emit


def _floats(text: str, opt: str) -> list[float]:
    from seren.errors import ConfigError

    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(
            f"{opt}: {text!r} is not a comma-separated list of numbers", f"pass e.g. {opt} 1.0,0.5,0.0"
        ) from None


def simulate_cmd(
    users: int = typer.Option(1000, "--users", help="Simulated users."),
    items: int = typer.Option(800, "--items", help="Catalogue size."),
    rounds: int = typer.Option(20, "--rounds", help="Rounds of serve -> respond -> refresh."),
    k: int = typer.Option(10, "--k", "-k", help="Slate size (every arm)."),
    retrain_every: int = typer.Option(5, "--retrain-every", help="Rounds between retrains of the main recommender."),
    candidates: int = typer.Option(30, "--candidates", help="Serendipity candidates judged per user and round."),
    judge: str = typer.Option(
        "behaviour",
        "--judge",
        help="Judge of the serendipity candidates: behaviour, heuristic or serengpt (needs --model).",
    ),
    model: str = typer.Option("", "--model", help="SerenGPT model dir for --judge serengpt (small configurations)."),
    sibling_share: float = typer.Option(
        1.0, "--sibling-share", help="Share of hidden interests that are siblings of visible ones (0..1)."
    ),
    curiosity: float | None = typer.Option(None, "--curiosity", help="Mean curiosity of the population (0..1)."),
    arms: str = typer.Option(
        "",
        "--arms",
        help="Comma-separated arms (default all: control,random_unexpected,sibling_category,serendipity,exploration,seren).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the world and of the users' responses."),
    sweep: str = typer.Option(
        "", "--sweep", help="Also run the world sweep over these sibling shares, e.g. 1.0,0.5,0.0."
    ),
    sweep_curiosity: str = typer.Option("", "--sweep-curiosity", help="Curiosity means for the sweep, e.g. 0.2,0.6."),
    replay: Path | None = typer.Option(
        None, "--replay", help="Also replay the arms on a MovieLens folder (ml-latest-small)."
    ),
    quick: bool = typer.Option(False, "--quick", help="Small fast configuration (200 users, 8 rounds)."),
    out: Path | None = typer.Option(None, "--out", help="Report directory (default: SEREN_HOME/reports)."),
    as_json: bool = JsonOpt,
) -> None:
    """Simulate arm against arm on the synthetic world; print the lift table and the report path."""
    from seren.simulation.engine import ARMS, SimConfig
    from seren.simulation.run import QUICK, run_simulation

    arm_list = tuple(a.strip() for a in arms.split(",") if a.strip()) or tuple(ARMS)
    cfg = SimConfig(
        n_users=users,
        n_items=items,
        rounds=rounds,
        k=k,
        retrain_every=retrain_every,
        n_candidates=candidates,
        judge=judge,
        model_dir=model,
        hidden_sibling_share=sibling_share,
        curiosity_mean=curiosity,
        arms=arm_list,
        seed=seed,
    )
    if quick:
        cfg = dataclasses.replace(cfg, **QUICK)
    cfg.validate()  # bad settings fail before any work
    shares = _floats(sweep, "--sweep")
    curs: list[float | None] = list(_floats(sweep_curiosity, "--sweep-curiosity")) or [None]
    if replay is not None and not (replay / "ratings.csv").is_file():
        from seren.errors import ConfigError

        raise ConfigError(f"--replay {replay}: no ratings.csv there", "pass an ml-latest-small style folder")
    total = cfg.rounds * len(cfg.arms) * (1 + len(shares) * len(curs))

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*cols, transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("simulating rounds", total=total)

        def on_round(arm: str, r: int) -> None:
            bar.update(task, advance=1, description=f"{arm} round {r}/{cfg.rounds}")

        summary = run_simulation(cfg, shares, curs, replay, out, on_round=on_round)
    text = summary["text"] + f"\nreport: {summary['report']['html']} (+ {summary['report']['json']})"
    emit({k: v for k, v in summary.items() if k != "text"}, as_json, text)


def register(root: typer.Typer) -> None:
    root.command("simulate", help=simulate_cmd.__doc__)(simulate_cmd)
