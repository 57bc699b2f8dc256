"""judgment_drift component: python_func on real artifacts (drift and no-data), and a kfp.local run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from kfp import dsl

from components.drift.component import judgment_drift
from monitoring.judgments import append_judgments, write_reference
from monitoring.synthetic import synthetic_judgments
from seren.data.synthetic import SyntheticConfig, generate


@pytest.fixture(scope="module")
def judgments(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Reference = a shift=0 population; current = the shift=1 population judged an hour ago."""
    root = tmp_path_factory.mktemp("drift_component")
    recent = pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)
    d0 = generate(SyntheticConfig(n_users=100, n_items=160, seed=11))
    d1 = generate(SyntheticConfig(n_users=100, n_items=160, seed=11, shift=1.0))
    write_reference(synthetic_judgments(d0), root / "reference.parquet")
    append_judgments(synthetic_judgments(d1, judged_at=recent), root / "current", run_id="r1")
    return {"reference": root / "reference.parquet", "current": root / "current"}


def _artifacts(artifact) -> dict:
    return {
        "report": artifact(dsl.HTML, "report"),
        "summary": artifact(dsl.Artifact, "summary"),
        "metrics": artifact(dsl.Metrics, "metrics"),
    }


def test_drift_unit(judgments, tmp_path: Path, artifact) -> None:
    arts = _artifacts(artifact)
    drifted = judgment_drift.python_func(
        **arts,
        reference=str(judgments["reference"]),
        current=str(judgments["current"]),
        reports_dir=str(tmp_path / "reports"),
        workspace=str(tmp_path / "ws"),
    )
    summary = json.loads(Path(arts["summary"].path).read_text())
    assert drifted == "true" and summary["status"] == "fail" and summary["drifted"] is True
    assert arts["summary"].metadata["status"] == "fail"
    assert Path(summary["reports_dir"]).parent == tmp_path / "reports"
    assert Path(arts["report"].path).read_bytes() == (Path(summary["reports_dir"]) / "judgment_drift.html").read_bytes()
    gates = {g["name"]: g for g in summary["gates"]}
    assert arts["metrics"].metadata["score_ks_pvalue"] == pytest.approx(gates["score_ks_pvalue"]["value"])
    assert arts["metrics"].metadata["current_rows"] == summary["rows"]["current"] > 0
    assert summary["workspace"]["path"] == str((tmp_path / "ws").resolve())


def test_no_data_unit(judgments, tmp_path: Path, artifact) -> None:
    arts = _artifacts(artifact)
    drifted = judgment_drift.python_func(
        **arts,
        reference=str(judgments["reference"]),
        current=str(judgments["current"]),
        end="2020-01-01T00:00Z",
        reports_dir=str(tmp_path / "reports"),
        gates={"max_score_psi": 0.3},
    )
    summary = json.loads(Path(arts["summary"].path).read_text())
    assert drifted == "false" and summary["status"] == "no_data"
    assert summary["thresholds"]["max_score_psi"] == 0.3
    assert "no data in window" in Path(arts["report"].path).read_text()  # the run page stands in for the report
    with pytest.raises(Exception, match="gate max_psi"):
        judgment_drift.python_func(**_artifacts(artifact), current=str(judgments["current"]), gates={"max_psi": 1})
