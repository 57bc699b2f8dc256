"""trigger_training component: a Kubeflow run when a host is configured (argument or $SEREN_KFP_HOST, against
the fake API server: mocked_kfp_cluster), else a real local kfp.local run of the named pipeline."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from kfp import dsl

from components.trigger_training.component import trigger_training
from monitoring.judgments import append_judgments, write_reference
from monitoring.synthetic import synthetic_judgments
from seren.data.synthetic import SyntheticConfig, generate
from seren.errors import ConfigError


def test_trigger_kubeflow_run_from_env_mocked_kfp_cluster(fake_kfp, artifact, monkeypatch) -> None:
    monkeypatch.setenv("SEREN_KFP_HOST", fake_kfp.url)
    info_art = artifact(dsl.Artifact, "run_info")
    run_id = trigger_training.python_func(
        run_info=info_art, pipeline="features", params={"n_users": 30.0, "seed": 4}, reason="drift"
    )
    (run,) = fake_kfp.runs
    assert run_id == run["run_id"]
    assert run["runtime_config"]["parameters"] == {"n_users": 30, "seed": 4}  # 30.0 from a KFP Struct -> int
    info = json.loads(Path(info_art.path).read_text())
    assert info["mode"] == "kubeflow" and info["pipeline"] == "seren-features" and info["reason"] == "drift"
    assert info_art.metadata == {"mode": "kubeflow", "pipeline": "seren-features", "run_id": run_id}


def test_trigger_bad_target_is_one_line(artifact, monkeypatch) -> None:
    monkeypatch.delenv("SEREN_KFP_HOST", raising=False)
    with pytest.raises(ConfigError, match="unknown pipeline 'nope'"):
        trigger_training.python_func(run_info=artifact(dsl.Artifact, "i"), pipeline="nope")


def test_trigger_local_run(tmp_path: Path, artifact, monkeypatch) -> None:
    """No host: a real local run. The target is the monitoring pipeline itself on no-drift data (one cheap
    step), so a full training run is not needed to prove that the trigger starts and finishes a pipeline."""
    monkeypatch.delenv("SEREN_KFP_HOST", raising=False)
    ds = generate(SyntheticConfig(n_users=60, n_items=100, seed=5))
    judged = synthetic_judgments(ds, judged_at=pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1))
    users = sorted(judged["user_id"].unique())
    write_reference(judged[judged["user_id"].isin(users[::2])], tmp_path / "ref.parquet")
    append_judgments(judged[judged["user_id"].isin(users[1::2])], tmp_path / "cur", run_id="r1")

    info_art = artifact(dsl.Artifact, "run_info")
    params = {"reference": str(tmp_path / "ref.parquet"), "current": str(tmp_path / "cur"), "workspace": ""}
    run_id = trigger_training.python_func(run_info=info_art, pipeline="monitoring", params=params)
    info = json.loads(Path(info_art.path).read_text())
    assert info["mode"] == "local" and info["pipeline"] == "seren-monitoring" and info["run_id"] == run_id
    root = Path(info["pipeline_root"])
    assert root.parent == Path(os.environ["SEREN_HOME"]) / "pipeline_runs" / "monitoring" and root.name == run_id
    result = json.loads((root / "result.json").read_text())
    assert (
        set(result["tasks"]) == {"judgment-drift"}
        and result["tasks"]["judgment-drift"]["parameters"]["Output"] == "false"
    )
