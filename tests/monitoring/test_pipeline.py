"""The monitoring pipeline under kfp.local: the dsl.If gate starts retraining only on drift.

No Kubeflow cluster runs here, so the triggered run goes to `fake_kfp` (tests/pipelines'
stand-in API server that the real kfp.Client talks to): tests say `mocked_kfp_cluster`. The
trigger target is the cheap `features` pipeline (its compile + upload is what is exercised; the
SerenGPT training pipeline is the default target). kfp.local takes the false branch silently when a
condition cannot be evaluated, so both tests assert on what each branch really left behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import pipelines as P

TARGET_PARAMS = {"n_users": 40, "n_items": 80, "seed": 2}


def _run(judgment_files, current: Path, fake_kfp) -> dict:
    return P.run_local(
        "monitoring",
        {
            "reference": str(judgment_files.reference),
            "current": str(current),
            "workspace": "",
            "target_pipeline": "features",
            "target_params": TARGET_PARAMS,
            "kfp_host": fake_kfp.url,
            "experiment": "seren-retraining",
        },
    )


def test_drift_triggers_retraining_mocked_kfp_cluster(judgment_files, fake_kfp) -> None:
    res = _run(judgment_files, judgment_files.current_drift, fake_kfp)

    assert set(res["tasks"]) == {"judgment-drift", "trigger-training"}, res["tasks"]
    drift = res["tasks"]["judgment-drift"]
    assert drift["parameters"]["Output"] == "true"
    assert drift["artifacts"]["summary"]["metadata"]["status"] == "fail"
    assert drift["artifacts"]["metrics"]["metadata"]["score_ks_pvalue"] < 0.01

    # exactly one Kubeflow run of the versioned target pipeline, with the target's typed arguments
    (run,) = fake_kfp.runs
    assert run["runtime_config"]["parameters"] == TARGET_PARAMS  # ints stay ints through the KFP dict param
    assert [e["display_name"] for e in fake_kfp.experiments.values()] == ["seren-retraining"]
    version = fake_kfp.versions[run["pipeline_version_reference"]["pipeline_version_id"]]
    assert version["display_name"] == f"seren-features-{P.pipeline_version()}"
    assert yaml.safe_load(version["spec"])["pipelineInfo"]["name"] == "seren-features"

    trigger = res["tasks"]["trigger-training"]
    assert trigger["parameters"]["Output"] == run["run_id"]
    info = json.loads(Path(trigger["artifacts"]["run_info"]["uri"]).read_text())
    assert info["mode"] == "kubeflow" and info["url"].endswith(f"/#/runs/details/{run['run_id']}")
    assert info["host"] == fake_kfp.url and info["reason"].startswith("judgment drift")
    # the pipeline's output is the run's Evidently drift page, kept as an HTML artifact for the KFP UI
    summary = json.loads(Path(drift["artifacts"]["summary"]["uri"]).read_text())
    page = Path(summary["reports_dir"]) / summary["files"]["judgment_drift"]["html"]
    assert Path(res["outputs"]["Output"]["path"]).read_bytes() == page.read_bytes()


def test_no_drift_does_not_trigger_mocked_kfp_cluster(judgment_files, fake_kfp) -> None:
    res = _run(judgment_files, judgment_files.current_nodrift, fake_kfp)

    assert set(res["tasks"]) == {"judgment-drift"}, res["tasks"]
    assert res["tasks"]["judgment-drift"]["parameters"]["Output"] == "false"
    assert res["tasks"]["judgment-drift"]["artifacts"]["summary"]["metadata"]["status"] == "pass"
    assert not list(Path(res["run_dir"]).glob("trigger-training*"))
    assert fake_kfp.requests == [] and fake_kfp.runs == []


def test_drift_dry_run_records_but_starts_nothing_mocked_kfp_cluster(judgment_files, fake_kfp) -> None:
    """Alert-only mode (what the demo uses): the gate fires, the trigger checks the target and records what
    it would start, and no run reaches Kubeflow."""
    res = P.run_local(
        "monitoring",
        {
            "reference": str(judgment_files.reference),
            "current": str(judgment_files.current_drift),
            "workspace": "",
            "target_pipeline": "features",
            "target_params": TARGET_PARAMS,
            "kfp_host": fake_kfp.url,
            "dry_run": True,
        },
    )
    assert res["tasks"]["judgment-drift"]["parameters"]["Output"] == "true"
    trigger = res["tasks"]["trigger-training"]
    assert trigger["parameters"]["Output"] == "dry-run"
    info = json.loads(Path(trigger["artifacts"]["run_info"]["uri"]).read_text())
    assert info["mode"] == "dry_run" and info["pipeline"] == "features" and info["params"] == TARGET_PARAMS
    assert info["would_start_on"] == f"Kubeflow at {fake_kfp.url}"
    assert fake_kfp.runs == []


def test_dry_run_still_rejects_an_unknown_target() -> None:
    from monitoring.retrain import trigger_training
    from seren.errors import SerenError

    with pytest.raises(SerenError, match="nope"):
        trigger_training("nope", {}, dry_run=True)


def test_default_target_is_serengpt_training() -> None:
    info = P.load("monitoring")
    spec = info.pipeline.pipeline_spec.root.input_definitions.parameters
    assert spec["target_pipeline"].default_value.string_value == "serengpt_training"
    assert info.default_params["target_pipeline"] == "serengpt_training"
