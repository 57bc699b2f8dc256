"""Sharded pair table (the ParallelFor tasks and the merge the exploration pipeline runs): the merged
table equals the serial build exactly; a retried task resumes from its finished parts; the merge
refuses a missing part, parts of another build, and a table with a doubled pair or an answer that
is not a valid novel cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from seren.errors import DataError
from seren.exploration.pair_table import build_pair_table, load_pair_table
from seren.exploration.pair_table_shards import (
    PLAN,
    build_pair_table_task,
    merge_pair_table,
    task_indices,
    task_parts,
    validate_pair_table,
)


class CountingModel:
    """The real novelty model, counting the pairs it is asked about (and failing on demand)."""

    def __init__(self, model: Any, fail_after_calls: int | None = None) -> None:
        self.inner, self.calls, self.pairs, self.fail_after = model, 0, 0, fail_after_calls
        self.ids, self.descriptions, self.model = model.ids, model.descriptions, model.model

    def top_novel(self, pairs: Any, **kw: Any) -> Any:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt  # a preempted pod mid-task
        self.calls += 1
        self.pairs += len(pairs)
        return self.inner.top_novel(pairs, **kw)


def test_round_robin_parts_cover_every_part_once() -> None:
    assert task_parts(7, 0, 3) == [0, 3, 6] and task_parts(7, 2, 3) == [2, 5]
    assert sorted(i for t in range(4) for i in task_parts(10, t, 4)) == list(range(10))
    assert task_indices(3) == [0, 1, 2]
    with pytest.raises(Exception, match="out of range"):
        task_parts(5, 3, 3)


@pytest.fixture(scope="module")
def sharded(novelty_model: Any, small_aligner: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pt_shards")
    ids = novelty_model.ids
    pairs = [(a, b) for a in ids[:6] for b in ids[:6]]  # 36 pairs -> 5 parts of 8
    kw = dict(n=2, n_candidates=4, aligner=small_aligner, pairs=pairs, shard_size=8)
    serial = load_pair_table(build_pair_table(novelty_model, root / "serial", **kw))
    results = [
        build_pair_table_task(novelty_model, root / "work", t, 3, out_dir=root / f"task{t}", **kw) for t in range(3)
    ]
    return {"root": root, "serial": serial, "results": results, "kw": kw, "pairs": pairs}


def test_sharded_table_equals_the_serial_one(sharded: dict[str, Any]) -> None:
    root, results = sharded["root"], sharded["results"]
    assert [r["parts"] for r in results] == [[0, 3], [1, 4], [2]]
    assert sum(r["pairs_computed"] for r in results) == 36 and len({r["fingerprint"] for r in results}) == 1
    table = load_pair_table(merge_pair_table([root / f"task{t}" for t in range(3)], root / "merged", results))
    pd.testing.assert_frame_equal(table, sharded["serial"])
    manifest = json.loads((root / "merged" / "manifest.json").read_text())
    assert manifest["finished"] and manifest["sharded"]["tasks"] == 3 and manifest["n_pairs"] == 36


def test_retried_task_resumes_from_its_finished_parts(
    sharded: dict[str, Any], novelty_model: Any, tmp_path: Path
) -> None:
    kw = sharded["kw"]
    crashing = CountingModel(novelty_model, fail_after_calls=1)
    with pytest.raises(KeyboardInterrupt):
        build_pair_table_task(crashing, tmp_path / "work", 0, 2, out_dir=tmp_path / "t0", **kw)  # parts 0, 2, 4
    retried = CountingModel(novelty_model)
    res = build_pair_table_task(retried, tmp_path / "work", 0, 2, out_dir=tmp_path / "t0", **kw)
    assert res["parts_done_before"] == 1 and retried.calls == 2 and res["parts_computed"] == 2
    other = build_pair_table_task(novelty_model, tmp_path / "work", 1, 2, out_dir=tmp_path / "t1", **kw)
    table = load_pair_table(merge_pair_table([tmp_path / "t0", tmp_path / "t1"], tmp_path / "m", [res, other]))
    pd.testing.assert_frame_equal(table, sharded["serial"])


def test_merge_refuses_missing_foreign_or_invalid_parts(sharded: dict[str, Any], tmp_path: Path) -> None:
    root = sharded["root"]
    with pytest.raises(DataError, match="1 of 5 pair-table part"):
        merge_pair_table([root / "task0", root / "task1"], tmp_path / "a")
    assert not (tmp_path / "a" / "pair_table.parquet").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    plan = json.loads((root / "task2" / PLAN).read_text())
    (foreign / PLAN).write_text(json.dumps({**plan, "fingerprint": "0" * 16}))
    with pytest.raises(DataError, match="different builds"):
        merge_pair_table([root / "task0", root / "task1", foreign], tmp_path / "b")

    table, ids, pairs = sharded["serial"], plan["ids"], [tuple(p) for p in plan["pairs_list"]]
    validate_pair_table(table, ids, pairs)
    with pytest.raises(DataError, match="duplicated"):
        validate_pair_table(pd.concat([table, table.iloc[:1]], ignore_index=True), ids, pairs)
    with pytest.raises(DataError, match="missing"):
        validate_pair_table(table.iloc[1:], ids, pairs)
    bad = table.copy()
    bad.at[0, "novel_clusters"] = [bad.at[0, "c1"]]  # the pair's own cluster is not novel
    with pytest.raises(DataError, match=f"pair {bad.at[0, 'cluster_pair']}"):
        validate_pair_table(bad, ids, pairs)
    bad.at[0, "novel_clusters"] = ["no-such-cluster"]
    with pytest.raises(DataError, match="distinct novel clusters"):
        validate_pair_table(bad, ids, pairs)
