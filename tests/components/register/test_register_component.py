"""register_model component: unit tests via python_func (the kfp.local runs are in the validate and
deploy tests, behind the validation gate)."""

# no `from __future__ import annotations`: KFP reads the pipeline's parameter annotations
import json
from pathlib import Path

import pytest
from kfp import dsl

from components.register.component import register_model
from seren.errors import DataError
from seren.registry import Registry

from ..export.shared import onnx_dir

REPORT = {
    "passed": True,
    "gates": {"onnx_max_abs_diff": {"value": 1e-7, "threshold": 1e-3, "passed": True, "status": "pass"}},
}


@pytest.fixture
def inputs(tmp_path: Path, tiny_model_dir: Path) -> dict:
    (tmp_path / "validation.json").write_text(json.dumps(REPORT))
    results = tmp_path / "results"
    results.mkdir()
    ablation = {"order": ["popularity", "SFT+alignment"], "rows": {"popularity": {"roc_auc": 0.52}, "SFT+alignment": {"roc_auc": 0.68}},
                "n_candidates": 12, "n_users": 3}  # fmt: skip
    (results / "ablation.json").write_text(json.dumps(ablation))
    (tmp_path / "report.md").write_text("| scorer | ROC-AUC |\n")
    return {
        "model": dsl.Model(name="model", uri=str(tiny_model_dir), metadata={"stage": "ipo", "base_model": "tiny"}),
        "onnx": dsl.Model(name="onnx", uri=str(onnx_dir(tiny_model_dir, tmp_path / "onnx"))),
        "validation": dsl.Artifact(name="report", uri=str(tmp_path / "validation.json")),
        "evaluation": dsl.Artifact(name="results", uri=str(results)),
        "evaluation_report": dsl.Markdown(name="report", uri=str(tmp_path / "report.md")),
    }


def test_register_component_unit(artifact, inputs: dict, tmp_path: Path, tiny_model_dir: Path) -> None:
    registered = artifact(dsl.Artifact, "registered")
    reg_uri = str(tmp_path / "registry")
    out = register_model.python_func(**inputs, registered=registered, registry=reg_uri)
    assert (out.version, out.registry) == (1, reg_uri)
    man = json.loads(Path(registered.path).read_text())
    reg = Registry(reg_uri)
    assert man["version"] == 1 and reg.manifest("serengpt", 1)["files"] == man["files"]
    assert man["metrics"]["roc_auc"] == 0.68 and man["metrics"]["popularity.roc_auc"] == 0.52  # the aligned model's
    assert man["metadata"]["model.stage"] == "ipo" and man["metadata"]["model_uri"] == str(tiny_model_dir)
    assert {"model/config.json", "onnx/model.onnx", "evaluation.md", "validation.json", "model_card.md"} <= set(
        man["files"]
    )
    assert registered.metadata == {"model": "serengpt", "version": 1, "registry": reg_uri}
    reg.verify("serengpt", 1)
    # a second run is a new version, never an overwrite
    assert register_model.python_func(**inputs, registered=artifact(dsl.Artifact, "r2"), registry=reg_uri).version == 2


def test_register_component_bad_report_unit(artifact, inputs: dict, tmp_path: Path) -> None:
    inputs["validation"] = dsl.Artifact(name="report", uri=str(tmp_path / "missing.json"))
    registered = artifact(dsl.Artifact, "registered")
    with pytest.raises(DataError, match="validation report"):
        register_model.python_func(**inputs, registered=registered, registry=str(tmp_path / "registry"))
    assert not Path(registered.path).exists() and Registry(tmp_path / "registry").versions("serengpt") == []
