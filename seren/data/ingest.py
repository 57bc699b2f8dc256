"""Ingest, defined once: a named source -> a validated canonical Dataset.

The ingest component (components/ingest) and the `seren data generate / import-movielens /
import-csv` commands both call `load_source`, so a source reads the same way wherever it enters
(the dispatch used to be written twice).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seren.data.dataset import Dataset
from seren.errors import ConfigError

SOURCES = ("synthetic", "movielens", "csv", "dataset")


def load_source(
    source: str,
    path: str | os.PathLike[str] = "",
    *,
    items_path: str | os.PathLike[str] | None = None,
    mapping: dict[str, str] | None = None,
    items_mapping: dict[str, str] | None = None,
    event_default: str = "rating",
    synthetic: dict[str, Any] | None = None,
    min_tag_count: int = 1,
    on_step: Callable[[int, int], None] | None = None,
) -> Dataset:
    """The validated dataset of one source.

    synthetic: the seeded generator (`synthetic`: SyntheticConfig fields, e.g. n_users, n_items,
    seed; `on_step` reports progress) | movielens: `path` = folder with ratings.csv, movies.csv
    (tags.csv optional) | csv: `path` = interactions file (csv, tsv or parquet), `items_path` = item
    catalogue or None to derive one from the ids, mapping / items_mapping = {canonical: source
    column} | dataset: `path` = a canonical dataset directory (`seren data generate`), re-validated.
    """
    if source == "synthetic":
        from seren.data.synthetic import SyntheticConfig, generate

        return generate(SyntheticConfig(**(synthetic or {})), on_step=on_step)
    if source == "movielens":
        from seren.data.movielens import load_movielens

        return load_movielens(path, min_tag_count=min_tag_count)  # validated by the adapter
    if source == "dataset":
        from seren.data import load_dataset

        return load_dataset(path)
    if source == "csv":
        from seren.data.adapters import items_from_interactions, load_interactions, load_items

        inter_map, item_map = dict(mapping or {}), dict(items_mapping or {})
        inter = load_interactions(path, inter_map, event_default=event_default)
        items = load_items(items_path, item_map) if items_path else items_from_interactions(inter)
        meta = {
            "source": "csv",
            "interactions": str(Path(path).resolve()),
            "items": str(Path(items_path).resolve()) if items_path else None,
            "mapping": {"interactions": inter_map, "items": item_map},
        }
        return Dataset(interactions=inter, items=items, meta=meta).validate()
    raise ConfigError(f"unknown ingest source {source!r}", f"use source={', '.join(SOURCES[:-1])} or {SOURCES[-1]}")
