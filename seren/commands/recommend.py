"""`seren recommend`: a slate for one user, served from the online feature store only."""

from __future__ import annotations

from pathlib import Path

import typer

from seren.commands._common import JsonOpt, check_feature_dir, emit
from seren.commands.features import DirOpt, TargetOpt, _parse_time, parse_age


def recommend_cmd(
    user: str = typer.Option(..., "--user", "-u", help="User id, e.g. u00001."),
    k: int = typer.Option(10, "--k", "-k", help="Slate size (1..100)."),
    serendipity: int = typer.Option(
        2,
        "--serendipity",
        help="Serendipity slots from cached SerenGPT candidates. Special slots sit at positions 3, 5, 7, ..., "
        "serendipity and exploration alternating (defaults: serendipity 3 and 7, exploration 5).",
    ),
    explore: int = typer.Option(
        1, "--explore", help="Exploration slots from the novel-cluster slate, labelled with the novel cluster."
    ),
    max_age: str | None = typer.Option(
        None, "--max-age", help="Cached candidates older than this fall back to the main slate (default 2d)."
    ),
    now: str | None = typer.Option(
        None,
        "--now",
        help="Reference time for freshness: ISO time, or 'watermark' = the nearline watermark "
        "(replayed data whose events lie in the past). Default: the wall clock.",
    ),
    target: str | None = TargetOpt,
    features_dir: Path | None = DirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Recommend k items: the main slate with serendipity and exploration slots; each slot says
    its source, and stale or missing sources fall back to the main slate with the reason."""
    from feature_repo.config import check_target
    from seren.recommend import check_sizes

    check_sizes(k, serendipity, explore)  # bad input fails before Feast's imports
    age = parse_age(max_age) if max_age else None
    ref = now if now in (None, "watermark") else _parse_time(now, "--now")
    check_target(target, features_dir)  # unknown target / Redis down: one line, fast
    check_feature_dir(features_dir, need_store=True, target=target)  # never creates a store

    from feature_repo import store as fs
    from seren.recommend import format_slate, recommend

    result = recommend(
        fs.get_store(target, features_dir),
        user,
        k=k,
        n_serendipity=serendipity,
        n_explore=explore,
        max_age=age,
        now=ref,
    )
    emit(result, as_json, format_slate(result))


def register(root: typer.Typer) -> None:
    root.command("recommend", help=recommend_cmd.__doc__)(recommend_cmd)
