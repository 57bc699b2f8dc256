"""Pair table: novelty LLM (+ best-of-n alignment) over every cluster pair -> parquet (+ Feast); in one
task (pair_table) or sharded: pair_table_tasks -> ParallelFor(pair_table_shard) -> pair_table_merge."""

from typing import List  # noqa: UP035 - KFP reads typing.List

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def pair_table(
    model: Input[Model],
    aligner: Input[Model],
    table: Output[Dataset],
    metrics: Output[Metrics],
    n: int = 3,
    n_candidates: int = 10,
    use_aligner: bool = True,
    shard_size: int = 64,
    method: str = "auto",
    work_dir: str = "",
    push_to_feast: bool = False,
    feast_target: str = "",
    feast_data_dir: str = "",
):
    """work_dir (shared storage) keeps finished shards so a retried step resumes; method auto|score|beam."""
    from seren.exploration.workflow import run_pair_table

    out = run_pair_table(
        model.path,
        table.path,
        aligner.path if use_aligner else None,
        n=n,
        n_candidates=n_candidates,
        shard_size=shard_size,
        method=method,
        work_dir=work_dir or None,
    )
    if push_to_feast:
        from seren.publish import push_pair_table

        out["pushed_rows"] = float(push_pair_table(table.path, feast_target or None, feast_data_dir or None))
    for key, value in out.items():
        metrics.log_metric(key, value)


# ------------------------------------------------------------------ sharded pair table (tasks -> shards -> merge)


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def pair_table_tasks(tasks: int = 1) -> List[int]:  # noqa: UP006 - KFP reads typing.List
    """The ParallelFor items: one index per pair-table task."""
    from seren.exploration.pair_table_shards import task_indices

    return task_indices(tasks)


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def pair_table_shard(
    model: Input[Model],
    aligner: Input[Model],
    part: Output[Dataset],
    metrics: Output[Metrics],
    task: int = 0,
    tasks: int = 1,
    n: int = 3,
    n_candidates: int = 10,
    use_aligner: bool = True,
    shard_size: int = 64,
    method: str = "auto",
    work_dir: str = "",
) -> dict:
    """One fan-out task: its round-robin share of the table's fixed parts (resumable in work_dir)."""
    from seren.exploration.pair_table_shards import run_pair_table_task

    res = run_pair_table_task(
        model.path,
        aligner.path if use_aligner else None,
        task,
        tasks,
        part.path,
        work_dir=work_dir or None,
        n=n,
        n_candidates=n_candidates,
        shard_size=shard_size,
        method=method,
    )
    for key in ("task", "parts_computed", "parts_done_before", "pairs_computed", "seconds", "pairs_per_s"):
        metrics.log_metric(key, res[key])
    return res


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def pair_table_merge(
    parts: Input[List[Dataset]],  # noqa: UP006
    results: List[dict],  # noqa: UP006
    table: Output[Dataset],
    metrics: Output[Metrics],
    push_to_feast: bool = False,
    feast_target: str = "",
    feast_data_dir: str = "",
):
    """The fan-in: every part exactly once, every answer a valid novel cluster -> the table (+ Feast)."""
    from seren.exploration.pair_table_shards import run_pair_table_merge

    out = run_pair_table_merge([p.path for p in parts], table.path, results)
    if push_to_feast:
        from seren.publish import push_pair_table

        out["pushed_rows"] = float(push_pair_table(table.path, feast_target or None, feast_data_dir or None))
    for key, value in out.items():
        metrics.log_metric(key, value)
