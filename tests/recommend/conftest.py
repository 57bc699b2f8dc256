"""A real Feast store (local SQLite) with the small synthetic dataset's batch views applied and
materialized; tests push their own user_candidates / novel_interests rows (the nearline job is
not needed) under user ids of their own, so one store serves the whole module."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

_FEATURES_CONFTEST = Path(__file__).resolve().parents[1] / "features" / "conftest.py"


def _redis_server_class() -> type:
    """Reuse tests/features' throwaway redis-server (conftests are not importable by name)."""
    spec = importlib.util.spec_from_file_location("_seren_features_conftest", _FEATURES_CONFTEST)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod.RedisServer


@pytest.fixture(scope="session")
def items(small_dataset: Path) -> pd.DataFrame:
    from seren.data import load_dataset

    return load_dataset(small_dataset).items


def build_store(target: str, data_dir: Path, dataset_dir: Path) -> Any:
    from feature_repo import store as fs
    from seren.data import load_dataset

    st = fs.get_store(target, data_dir)
    fs.write_offline(load_dataset(dataset_dir), data_dir)
    fs.apply(st)
    fs.materialize(st, views=["user_stats", "item_features"])
    return st


@pytest.fixture(scope="module")
def store(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from feature_repo import store as fs

    st = build_store("local", tmp_path_factory.mktemp("rec") / "features", small_dataset)
    yield st
    fs.teardown(st)


@pytest.fixture
def redis_server() -> Iterator[Any]:
    server = _redis_server_class()()
    try:
        yield server
    finally:
        server.stop()


def push_candidates(
    store: Any,
    user_id: str,
    main: list[str],
    cands: list[str] | None = None,
    scores: list[float] | None = None,
    explore: list[str] | None = None,
    pair: str = "",
    when: datetime | None = None,
    to: str = "online",
) -> None:
    from feature_repo import store as fs

    row = {
        "user_id": [user_id],
        "candidate_item_ids": [cands or []],
        "candidate_scores": [scores or []],
        "main_item_ids": [main],
        "explore_item_ids": [explore or []],
        "cluster_pair": [pair],
        "event_timestamp": [pd.Timestamp(when or datetime.now(UTC))],
    }
    assert fs.push(store, "user_candidates_push", pd.DataFrame(row), to=to) == 1


def push_novel(store: Any, pair: str, clusters: list[str], scores: list[float], when: datetime | None = None) -> None:
    from feature_repo import store as fs

    row = {
        "cluster_pair": [pair],
        "novel_clusters": [clusters],
        "novel_scores": [scores],
        "event_timestamp": [pd.Timestamp(when or datetime.now(UTC))],
    }
    assert fs.push(store, "novel_interest_push", pd.DataFrame(row), to="online") == 1


@pytest.fixture(scope="session")
def cache() -> Any:
    """Writers for the nearline outputs (test modules cannot import a conftest by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(candidates=push_candidates, novel=push_novel, build_store=build_store)
