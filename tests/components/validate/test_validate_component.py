"""validate_scorer component: unit tests via python_func, and a kfp.local run of
validate -> dsl.If(validate.outputs["Output"] == "true") -> register where the gate fails."""

# no `from __future__ import annotations`: KFP reads the pipeline's parameter annotations
import json
from pathlib import Path

import pytest
from kfp import dsl

from components.register.component import register_model
from components.validate.component import validate_scorer
from seren.errors import DataError
from seren.llm.calibration import decision_threshold, load_calibration
from seren.registry import Registry

from ..export.shared import onnx_dir, training_data


@pytest.fixture
def inputs(tmp_path: Path, tiny_model_dir: Path) -> dict:
    return {
        "model": dsl.Model(name="model", uri=str(tiny_model_dir)),
        "onnx": dsl.Model(name="onnx", uri=str(onnx_dir(tiny_model_dir, tmp_path / "onnx"))),
        "training_data": dsl.Dataset(name="td", uri=str(training_data(tmp_path / "td"))),
    }


def test_validate_component_unit(artifact, inputs: dict) -> None:
    report, metrics = artifact(dsl.Artifact, "report"), artifact(dsl.Metrics, "metrics")
    out = validate_scorer.python_func(**inputs, report=report, metrics=metrics, judgments=artifact(dsl.Dataset, "j"))
    rep = json.loads(Path(report.path).read_text())
    assert out == "true" and rep["passed"] is True and report.metadata["passed"] is True
    assert rep["n"] == 24 and rep["gates"]["onnx_max_abs_diff"]["value"] <= 1e-3
    assert rep["gates"]["tensorrt_auc_delta"]["status"].startswith("skipped")  # no engine here: skipped, not passed
    m = metrics.metadata
    assert m["passed"] == 1.0 and m["onnx_max_abs_diff"] == rep["gates"]["onnx_max_abs_diff"]["value"]


def test_validate_records_reference_judgments_unit(
    artifact, tmp_path: Path, tiny_model_dir: Path, small_dataset: Path
) -> None:
    """With the dataset, validation's judgments become monitoring's reference, but only when the gates pass."""
    import pandas as pd

    from monitoring.judgments import JUDGMENT_COLUMNS, default_reference_path, load_judgments

    ds_users = sorted(pd.read_parquet(small_dataset / "interactions.parquet")["user_id"].unique())[:6]
    ds_items = sorted(pd.read_parquet(small_dataset / "items.parquet")["item_id"])[:4]
    kw = {
        "model": dsl.Model(name="model", uri=str(tiny_model_dir)),
        "onnx": dsl.Model(name="onnx", uri=str(onnx_dir(tiny_model_dir, tmp_path / "onnx"))),
        "training_data": dsl.Dataset(
            name="td", uri=str(training_data(tmp_path / "td", users=ds_users, items=ds_items))
        ),
        "dataset": dsl.Dataset(name="ds", uri=str(small_dataset)),
    }
    # a gate that cannot pass: the judgments artifact is written, the reference is not
    failed = artifact(dsl.Dataset, "judgments_failed")
    out = validate_scorer.python_func(
        **kw, report=artifact(dsl.Artifact, "r1"), metrics=artifact(dsl.Metrics, "m1"), judgments=failed, auc_delta=-1.0
    )
    assert out == "false" and Path(failed.path).is_file() and not default_reference_path().exists()
    judgments = artifact(dsl.Dataset, "judgments")
    out = validate_scorer.python_func(
        **kw, report=artifact(dsl.Artifact, "r2"), metrics=artifact(dsl.Metrics, "m2"), judgments=judgments
    )
    assert out == "true"
    ref = load_judgments(default_reference_path())
    assert len(ref) == 24 and set(JUDGMENT_COLUMNS) <= set(ref.columns) and "feedback" in ref.columns
    assert set(ref["user_id"]) == set(ds_users) and ref["profile_tokens"].gt(0).all()
    items = pd.read_parquet(small_dataset / "items.parquet").set_index("item_id")
    assert ref["candidate_popularity"].tolist() == pytest.approx(items.loc[ref["item_id"], "popularity"].tolist())
    thr = decision_threshold(load_calibration(tiny_model_dir))  # the card's, like nearline's (issue 12)
    assert ((ref["score"] >= thr).astype(int) == ref["judged_serendipitous"]).all()
    assert pd.read_parquet(judgments.path)["score"].tolist() == pytest.approx(ref["score"].tolist())


def test_validate_component_bad_training_data_unit(artifact, inputs: dict, tmp_path: Path) -> None:
    inputs["training_data"] = dsl.Dataset(name="td", uri=str(tmp_path / "nothing"))
    report, metrics = artifact(dsl.Artifact, "report"), artifact(dsl.Metrics, "metrics")
    with pytest.raises(DataError, match="not a training-data directory"):
        validate_scorer.python_func(**inputs, report=report, metrics=metrics, judgments=artifact(dsl.Dataset, "j"))
    assert not Path(report.path).exists()


def test_failed_validation_stops_registration_local(kfp_local, tiny_model_dir: Path, tmp_path: Path) -> None:
    """kfp.local: importers -> validate -> If(Output == "true") -> register, with a gate that cannot be met
    (|AUC change| <= -1): register must not run. The true branch (register + deploy) is asserted in the
    deploy chain test; kfp.local silently takes the false branch when a condition fails to evaluate, so
    that test checks the branch's outputs exist, and this one that the report really failed."""
    registry = tmp_path / "registry"
    results = tmp_path / "results"
    results.mkdir()
    (results / "ablation.json").write_text(json.dumps({"roc_auc": 0.7}))
    (tmp_path / "report.md").write_text("# ablation\n")

    @dsl.pipeline(name="validate-gate-local-test")
    def pipe(model_uri: str, onnx_uri: str, td_uri: str, results_uri: str, md_uri: str, registry: str):
        m = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model, reimport=False)
        o = dsl.importer(artifact_uri=onnx_uri, artifact_class=dsl.Model, reimport=False)
        td = dsl.importer(artifact_uri=td_uri, artifact_class=dsl.Dataset, reimport=False)
        ev = dsl.importer(artifact_uri=results_uri, artifact_class=dsl.Artifact, reimport=False)
        md = dsl.importer(artifact_uri=md_uri, artifact_class=dsl.Markdown, reimport=False)
        val = validate_scorer(model=m.output, onnx=o.output, training_data=td.output, auc_delta=-1.0, max_rows=24)
        with dsl.If(val.outputs["Output"] == "true"):
            register_model(
                model=m.output, onnx=o.output, validation=val.outputs["report"], evaluation=ev.output,
                evaluation_report=md.output, registry=registry,
            )  # fmt: skip

    pipe(
        model_uri=str(tiny_model_dir), onnx_uri=str(onnx_dir(tiny_model_dir, tmp_path / "onnx")),
        td_uri=str(training_data(tmp_path / "td")), results_uri=str(results), md_uri=str(tmp_path / "report.md"),
        registry=str(registry),
    )  # fmt: skip
    reports = list(Path(kfp_local).rglob("validate-scorer/report"))
    assert len(reports) == 1, "validate did not run"
    rep = json.loads(reports[0].read_text())
    assert rep["passed"] is False and rep["gates"]["onnx_auc_delta"]["status"] == "fail"
    assert rep["gates"]["onnx_max_abs_diff"]["status"] == "pass"
    assert list(Path(kfp_local).rglob("register-model/registered")) == []
    assert Registry(registry).versions("serengpt") == []
