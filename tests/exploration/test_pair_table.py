"""Pair table: all N^2 pairs, never the pair's own clusters, resume after an interruption,
settings change restarts, lookup fallbacks, Feast push."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from seren.errors import ConfigError, DataError
from seren.exploration.pair_table import (
    MANIFEST,
    SHARDS,
    PairLookup,
    build_pair_table,
    load_pair_table,
    pair_key,
    table_metrics,
)


class CountingModel:
    """The real novelty model, counting how many pairs it is asked about."""

    def __init__(self, model: Any, fail_after_calls: int | None = None) -> None:
        self.inner, self.calls, self.pairs, self.fail_after = model, 0, 0, fail_after_calls
        self.ids, self.descriptions, self.model = model.ids, model.descriptions, model.model

    def top_novel(self, pairs: Any, **kw: Any) -> Any:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt  # what Ctrl-C or a preempted node looks like mid-build
        self.calls += 1
        self.pairs += len(pairs)
        return self.inner.top_novel(pairs, **kw)


@pytest.fixture(scope="module")
def full_table(novelty_model: Any, small_aligner: Any, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = build_pair_table(
        novelty_model, tmp_path_factory.mktemp("pt"), n=3, aligner=small_aligner, n_candidates=6, shard_size=40
    )
    return load_pair_table(out)


def test_all_pairs_and_never_own_cluster(full_table: pd.DataFrame, novelty_model: Any) -> None:
    n = len(novelty_model.ids)
    assert len(full_table) == n * n and full_table["cluster_pair"].is_unique
    assert set(full_table["cluster_pair"]) == {pair_key(a, b) for a in novelty_model.ids for b in novelty_model.ids}
    for row in full_table.itertuples():
        assert len(row.novel_clusters) == 3 and not {row.c1, row.c2} & set(row.novel_clusters)
        assert set(row.novel_clusters) <= set(row.llm_clusters) and len(row.llm_clusters) == 6
    m = table_metrics(full_table, novelty_model.ids)
    assert m["pairs"] == m["expected_pairs"] and m["pairs_recommending_own_cluster"] == 0


def test_resume_after_interruption(novelty_model: Any, tmp_path: Path) -> None:
    ids = novelty_model.ids
    pairs = [(a, b) for a in ids[:6] for b in ids[:6]]  # 36 pairs, 5 shards of 8
    reference = load_pair_table(build_pair_table(novelty_model, tmp_path / "ref", pairs=pairs, shard_size=8))

    crashing = CountingModel(novelty_model, fail_after_calls=2)
    with pytest.raises(KeyboardInterrupt):
        build_pair_table(crashing, tmp_path / "run", pairs=pairs, shard_size=8)
    assert sorted(p.name for p in (tmp_path / "run" / SHARDS).glob("*.parquet")) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    assert not (tmp_path / "run" / "pair_table.parquet").exists()  # never a partial final table

    resumed = CountingModel(novelty_model)
    table = load_pair_table(build_pair_table(resumed, tmp_path / "run", pairs=pairs, shard_size=8))
    assert resumed.calls == 3 and resumed.pairs == 36 - 16  # only the missing shards
    pd.testing.assert_frame_equal(table, reference)

    again = CountingModel(novelty_model)
    build_pair_table(again, tmp_path / "run", pairs=pairs, shard_size=8)
    assert again.calls == 0  # finished: returned as is

    changed = CountingModel(novelty_model)
    table4 = load_pair_table(build_pair_table(changed, tmp_path / "run", pairs=pairs, shard_size=8, n=4))
    assert changed.pairs == 36 and table4["novel_clusters"].map(len).eq(4).all()  # new settings start over
    assert '"n": 4' in (tmp_path / "run" / MANIFEST).read_text()


def test_lookup_and_fallbacks(full_table: pd.DataFrame, novelty_model: Any) -> None:
    look = PairLookup(full_table)
    a, b = novelty_model.ids[:2]
    hit = look(a, b)
    assert (
        hit["source"] == "table"
        and hit["novel_clusters"] == full_table.set_index("cluster_pair").loc[pair_key(a, b), "novel_clusters"].tolist()
    )
    partial = full_table[full_table["cluster_pair"] != pair_key(a, b)]
    fb = PairLookup(partial)(a, b)
    assert fb["source"] == "fallback_c2" and len(fb["novel_clusters"]) == 3 and not {a, b} & set(fb["novel_clusters"])
    glob = PairLookup(full_table[full_table["c2"] != b])("new_cluster", b)
    assert glob["source"] == "fallback_global" and b not in glob["novel_clusters"]
    assert PairLookup(full_table.iloc[:0])(a, b)["source"] == "empty_table"


def test_bad_inputs(novelty_model: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shard_size"):
        build_pair_table(novelty_model, tmp_path, shard_size=0)
    with pytest.raises(DataError, match="no cluster pairs"):
        build_pair_table(novelty_model, tmp_path, pairs=[])
    with pytest.raises(DataError, match="does not exist"):
        load_pair_table(tmp_path / "missing.parquet")


def test_push_to_feast_online_store(full_table: pd.DataFrame, tmp_path: Path) -> None:
    from feature_repo.store import get_online, get_store
    from seren.publish import push_pair_table

    assert push_pair_table(full_table, target="local", data_dir=tmp_path / "features") == len(full_table)
    keys = full_table["cluster_pair"].iloc[:3].tolist()
    got = get_online(get_store("local", tmp_path / "features"), "novel_interests", keys)
    assert got["status"].tolist() == ["ok"] * 3
    assert [list(x) for x in got["novel_clusters"]] == [list(x) for x in full_table["novel_clusters"].iloc[:3]]
