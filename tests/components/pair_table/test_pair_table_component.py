"""pair_table component: all N^2 pairs with best-of-n alignment, resumable via work_dir, Feast push."""

from pathlib import Path

import pandas as pd
import pytest
from kfp import dsl

from components.pair_table.component import pair_table


@pytest.fixture(scope="module")
def stages(exploration_stages: dict) -> dict:
    """Stage outputs up to the sequence recommender (tests/components/conftest.py)."""
    return exploration_stages


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
