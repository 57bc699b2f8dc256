"""pair_table component: all N^2 pairs with best-of-n alignment, resumable via work_dir, Feast push."""

from pathlib import Path

import pandas as pd
import pytest
from kfp import dsl

from components.pair_table.component import pair_table
from seren.exploration.workflow import run_all


@pytest.fixture(scope="module")
def stages(small_dataset: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_all(
        small_dataset, tmp_path_factory.mktemp("pt_comp"), base_model=str(tiny_model_dir), n_top=3, n_sub=2, max_steps=4, batch_size=4,
        min_support=2, until="feedback_alignment", publish="none",
    )["dirs"]  # fmt: skip


def test_pair_table_unit(stages: dict, artifact, tmp_path: Path) -> None:
    from feature_repo.store import get_online, get_store

    table, metrics = artifact(dsl.Dataset, "table"), artifact(dsl.Metrics, "metrics")
    feast_dir = tmp_path / "features"
    pair_table.python_func(
        model=dsl.Model(name="m", uri=stages["novelty_finetune"]),
        aligner=dsl.Model(name="a", uri=stages["feedback_alignment"]),
        table=table,
        metrics=metrics,
        n=2,
        n_candidates=4,
        shard_size=10,
        work_dir=str(tmp_path / "work"),
        push_to_feast=True,
        feast_target="local",
        feast_data_dir=str(feast_dir),
    )
    df = pd.read_parquet(Path(table.path) / "pair_table.parquet")
    assert len(df) == 36 == metrics.metadata["pairs"] == metrics.metadata["pushed_rows"]
    assert metrics.metadata["pairs_recommending_own_cluster"] == 0 and metrics.metadata["pairs_per_s"] > 0
    assert len(list((tmp_path / "work" / "shards").glob("*.parquet"))) == 4
    online = get_online(get_store("local", feast_dir), "novel_interests", [df["cluster_pair"].iloc[0]])
    assert list(online["novel_clusters"].iloc[0]) == list(df["novel_clusters"].iloc[0])
    # the same step retried with the same work_dir reuses the finished shards
    again = artifact(dsl.Metrics, "metrics2")
    pair_table.python_func(
        model=dsl.Model(name="m", uri=stages["novelty_finetune"]),
        aligner=dsl.Model(name="a", uri=stages["feedback_alignment"]),
        table=artifact(dsl.Dataset, "table2"),
        metrics=again,
        n=2,
        n_candidates=4,
        shard_size=10,
        work_dir=str(tmp_path / "work"),
    )
    assert (
        again.metadata["pairs"] == 36
        and again.metadata["shards_computed"] == 0
        and again.metadata["shards_done_before"] == 4
    )
