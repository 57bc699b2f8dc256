"""nearline_refresh component body (python_func) on real artifacts, Triton and a local Feast store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from kfp import dsl

from components.nearline.component import nearline_refresh

pytestmark = pytest.mark.integration


def test_component_unit_writes_summary_metrics_and_returns_the_watermark(
    few_users: Path, triton, exploration_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    summary = dsl.Artifact(name="summary", uri=str(tmp_path / "a" / "summary"))
    metrics = dsl.Metrics(name="metrics", uri=str(tmp_path / "a" / "metrics"))
    kw = dict(
        dataset_dir=str(few_users),
        triton_url=triton.http_url,
        exploration_dir=str(exploration_dir),
        model=str(tiny_model_dir),
        token_budget=48,
        k_main=4,
        k_explore=3,
        top_n=3,
        threshold=0.0,
        feast_target="local",
        feast_data_dir=str(tmp_path / "features"),
        judgments_dir="none",
    )
    watermark = nearline_refresh.python_func(summary=summary, metrics=metrics, **kw)
    end = pd.to_datetime(pd.read_parquet(few_users / "interactions.parquet")["timestamp"], utc=True).max()
    assert pd.Timestamp(watermark) == end
    res = json.loads(Path(summary.path).read_text())
    assert res["users_refreshed"] == 4 and res["judgments"] is None and summary.metadata["watermark"] == watermark
    assert metrics.metadata["users_refreshed"] == 4 and metrics.metadata["seconds_scoring"] > 0
    # the run records what it read: the scorer's card (here --model) and the exploration bundle
    assert res["sources"]["scorer"] == {"source": "model", "model_dir": str(tiny_model_dir)}
    assert res["sources"]["exploration"]["dir"] == str(exploration_dir)
    published = json.loads((exploration_dir / "exploration.json").read_text())
    assert res["sources"]["exploration"]["created"] == published["created"]
    # a second tick: nothing changed, nothing scored, same watermark
    again = nearline_refresh.python_func(summary=summary, metrics=metrics, **kw)
    assert again == watermark and metrics.metadata["items_scored"] == 0
