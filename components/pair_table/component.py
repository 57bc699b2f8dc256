"""Pair table: novelty LLM (+ best-of-n alignment) over every cluster pair -> parquet (+ Feast)."""

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
        push=push_to_feast,
        feast_target=feast_target or None,
        feast_data_dir=feast_data_dir or None,
    )
    for key, value in out.items():
        metrics.log_metric(key, value)
