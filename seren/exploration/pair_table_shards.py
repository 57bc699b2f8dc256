"""The pair table built across Kubeflow tasks: pair_table_tasks -> ParallelFor(pair_table_shard) ->
pair_table_merge. Each task computes a round-robin share of the serial build's fixed parts
(seren.exploration.pair_table.plan_parts / compute_part), resumable under its work dir; the merge
checks every pair is present exactly once and every answer is a known, distinct novel cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from seren.errors import ConfigError, DataError
from seren.exploration.pair_table import (
    MANIFEST,
    TABLE_FILE,
    compute_part,
    load_pair_table,
    pair_key,
    plan_parts,
    table_metrics,
)
from seren.io import write_json, write_parquet

PARTS = "parts"
PLAN = "plan.json"


def task_parts(n_parts: int, task: int, n_tasks: int) -> list[int]:
    """The parts one of `n_tasks` fan-out tasks computes (round-robin, so tasks finish together)."""
    if not 1 <= n_tasks or not 0 <= task < n_tasks:
        raise ConfigError(f"task {task} of {n_tasks} is out of range", "pass 0 <= task < tasks, tasks >= 1")
    return list(range(task, n_parts, n_tasks))


def task_indices(n_tasks: int) -> list[int]:
    """The fan-out items of a sharded build: 0..n_tasks-1."""
    if not 1 <= int(n_tasks) <= 4096:
        raise ConfigError(f"pair-table tasks must be in 1..4096 (got {n_tasks})", "pass e.g. pair_table_shards=8")
    return list(range(int(n_tasks)))


def build_pair_table_task(
    model: Any,
    work_dir: str | os.PathLike[str],
    task: int,
    n_tasks: int,
    n: int = 3,
    n_candidates: int | None = None,
    aligner: Any | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    shard_size: int = 64,
    method: str = "auto",
    n_beams: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """One fan-out task of a sharded build: its parts of the table (the same fixed parts of
    `shard_size` pairs the serial build writes, so sharded == serial), resumable.

    Parts go to `<work_dir>/parts/<fingerprint>/part-NNNNN.parquet` (shared storage on Kubeflow:
    a retried task skips the parts it finished; a change of model or settings is a new fingerprint
    directory, so tasks never delete each other's files). With `out_dir` this task's parts and the
    plan are also copied there (its output artifact). Returns the task summary the merge checks."""
    pairs, n_cand, params, fingerprint = plan_parts(model, n, n_candidates, aligner, pairs, shard_size, method, n_beams)
    part_dir = Path(work_dir) / PARTS / fingerprint
    n_parts = (len(pairs) + shard_size - 1) // shard_size
    plan = {"fingerprint": fingerprint, "params": params, "n_pairs": len(pairs), "n_parts": n_parts}
    plan["ids"] = [str(c) for c in model.ids]
    plan["pairs_list"] = [list(p) for p in pairs]
    write_json(part_dir / PLAN, plan)  # identical for every task: atomic rewrite is harmless
    mine = task_parts(n_parts, task, n_tasks)
    t0 = time.perf_counter()
    computed = pairs_computed = 0
    for i in mine:
        f = part_dir / f"part-{i:05d}.parquet"
        if f.exists():
            continue
        chunk = pairs[i * shard_size : (i + 1) * shard_size]
        write_parquet(f, compute_part(model, aligner, chunk, n, n_cand, method, n_beams))
        computed += 1
        pairs_computed += len(chunk)
    seconds = time.perf_counter() - t0
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy2(part_dir / PLAN, out / PLAN)
        for i in mine:
            shutil.copy2(part_dir / f"part-{i:05d}.parquet", out / f"part-{i:05d}.parquet")
    return {
        "task": int(task),
        "tasks": int(n_tasks),
        "fingerprint": fingerprint,
        "parts": mine,
        "parts_computed": computed,
        "parts_done_before": len(mine) - computed,
        "pairs_computed": pairs_computed,
        "seconds": round(seconds, 3),
        "pairs_per_s": round(pairs_computed / seconds, 4) if seconds > 0 and pairs_computed else float("nan"),
    }


def validate_pair_table(table: pd.DataFrame, ids: Sequence[str], pairs: Sequence[tuple[str, str]]) -> None:
    """Every pair exactly once, every answer non-empty, distinct, a known cluster and novel (not c1/c2)."""
    keys = table["cluster_pair"].astype(str)
    dup = sorted(keys[keys.duplicated()].unique())
    expected = {pair_key(a, b) for a, b in pairs}
    missing = sorted(expected - set(keys))
    extra = sorted(set(keys) - expected)
    if dup or missing or extra:
        what = "; ".join(
            f"{name} {', '.join(v[:3])}{' ...' if len(v) > 3 else ''}"
            for name, v in (("duplicated", dup), ("missing", missing), ("unexpected", extra))
            if v
        )
        raise DataError(
            f"pair table is not every pair exactly once: {what}", "rebuild the missing parts and merge again"
        )
    known = set(ids)
    for row in table.itertuples():
        got = list(row.novel_clusters)
        bad = [c for c in got if c not in known or c in (row.c1, row.c2)]
        if not got or bad or len(set(got)) != len(got):
            raise DataError(
                f"pair {row.cluster_pair}: answer {got} is not a list of distinct novel clusters",
                "check the novelty model's constrained decoding, then rebuild that part",
            )


def merge_pair_table(
    part_dirs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], task_results: Sequence[dict] = ()
) -> Path:
    """The fan-in: every part from the tasks' directories -> one validated `pair_table.parquet`.

    Refuses parts of different builds (fingerprints), a missing or doubled part, and a table that
    is not every pair exactly once with valid novel answers; the table appears atomically."""
    if not part_dirs:
        raise DataError("no pair-table parts to merge", "run the pair-table tasks first")
    plans = [json.loads((Path(d) / PLAN).read_text()) for d in part_dirs if (Path(d) / PLAN).is_file()]
    prints = {p["fingerprint"] for p in plans} | {r["fingerprint"] for r in task_results if "fingerprint" in r}
    if len(plans) != len(part_dirs) or len(prints) != 1:
        raise DataError(
            f"pair-table parts come from {len(prints)} different builds (or lack {PLAN})",
            "run every task with the same model and settings",
        )
    plan = plans[0]
    found: dict[int, Path] = {}
    for d in part_dirs:
        for f in sorted(Path(d).glob("part-*.parquet")):
            i = int(f.stem.split("-")[1])
            if i in found and found[i].resolve() != f.resolve():
                raise DataError(f"part {i} was written by two tasks", "merge the outputs of one sharded run")
            found[i] = f
    missing = [i for i in range(plan["n_parts"]) if i not in found]
    if missing:
        raise DataError(
            f"{len(missing)} of {plan['n_parts']} pair-table part(s) missing (e.g. part {missing[0]})",
            "re-run the failed pair-table task(s); finished parts are kept",
        )
    table = pd.concat([pd.read_parquet(found[i]) for i in range(plan["n_parts"])], ignore_index=True)
    pairs = [tuple(p) for p in plan["pairs_list"]]
    validate_pair_table(table, plan["ids"], pairs)
    out = Path(out_dir)
    write_parquet(out / TABLE_FILE, table)
    seconds = [float(r["seconds"]) for r in task_results if "seconds" in r]
    write_json(
        out / MANIFEST,
        {
            "fingerprint": plan["fingerprint"],
            "params": plan["params"],
            "n_pairs": plan["n_pairs"],
            "finished": True,
            "sharded": {"tasks": len(task_results) or len(part_dirs), "task_seconds": seconds},
        },
    )
    return out / TABLE_FILE


def run_pair_table_task(
    model_dir: str | os.PathLike[str],
    aligner_dir: str | os.PathLike[str] | None,
    task: int,
    n_tasks: int,
    out_dir: str | os.PathLike[str],
    work_dir: str | os.PathLike[str] | None = None,
    n: int = 3,
    n_candidates: int = 10,
    shard_size: int = 64,
    method: str = "auto",
) -> dict[str, Any]:
    """The pair_table_shard component's call: load the novelty model (+ aligner), build this task's
    parts in `work_dir` (default: `out_dir`, its output artifact) and copy them to `out_dir`."""
    from seren.exploration.alignment import Aligner
    from seren.exploration.novelty import NoveltyModel

    model = NoveltyModel.from_pretrained(model_dir)
    aligner = Aligner.load(aligner_dir) if aligner_dir else None
    return build_pair_table_task(
        model,
        work_dir or out_dir,
        task,
        n_tasks,
        n=n,
        n_candidates=n_candidates,
        aligner=aligner,
        shard_size=shard_size,
        method=method,
        out_dir=out_dir,
    )


def run_pair_table_merge(
    part_dirs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    task_results: Sequence[dict] = (),
) -> dict[str, float]:
    """The pair_table_merge component's call: merge + validate the parts, metrics (the Feast push is the
    application's: `seren.publish.push_pair_table`)."""
    table_f = merge_pair_table(part_dirs, out_dir, task_results)
    table = load_pair_table(table_f)
    plan = json.loads((Path(part_dirs[0]) / PLAN).read_text())
    seconds = [float(r["seconds"]) for r in task_results if "seconds" in r]
    pairs_computed = sum(int(r.get("pairs_computed", 0)) for r in task_results)
    metrics: dict[str, float] = {
        **table_metrics(table, plan["ids"]),
        "tasks": float(len(task_results) or len(part_dirs)),
        "slowest_task_seconds": max(seconds) if seconds else 0.0,
        "pairs_computed": float(pairs_computed),
    }
    return {k: float(v) for k, v in metrics.items()}
