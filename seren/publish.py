"""Application layer: write the core's outputs into the online feature store (Feast).

The core (seren/exploration) builds the pair table as plain parquet and never imports Feast; the
components and the CLI that publish it call this module, which goes through `feature_repo.store`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd


def push_pair_table(
    table: pd.DataFrame | str | os.PathLike[str],
    target: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    to: str = "online_and_offline",
) -> int:
    """Write the pair table (a frame, or its parquet / the folder holding it) to the Feast
    `novel_interests` view, applying the repo first if the view is missing; returns the rows pushed."""
    from feature_repo.store import apply, get_store, push
    from seren.exploration.pair_table import TABLE_FILE, load_pair_table

    if not isinstance(table, pd.DataFrame):
        path = Path(table)
        table = load_pair_table(path / TABLE_FILE if path.is_dir() else path)
    store = get_store(target, Path(data_dir) if data_dir else None)
    try:
        store.get_feature_view("novel_interests")
    except Exception:
        apply(store)
    rows = table[["cluster_pair", "novel_clusters", "novel_scores"]].copy()
    rows["novel_scores"] = [[float(x) for x in s] for s in rows["novel_scores"]]
    return push(store, "novel_interest_push", rows, to=to)  # type: ignore[arg-type]
