"""deploy_model component: unit tests via python_func, and the kfp.local run of the steps appended
to serengpt_training: export -> validate -> If(passed) -> register -> deploy to dev, where dev has no
Triton URL and verifies with a temporary local tritonserver (real load + smoke inference)."""

# no `from __future__ import annotations`: KFP reads the pipeline's parameter annotations
import json
from pathlib import Path

import pytest
from kfp import dsl

from components.deploy.component import deploy_model
from components.export.component import export_scorer
from components.register.component import register_model
from components.validate.component import validate_scorer
from seren.errors import ConfigError
from seren.registry import Registry

from ..export.shared import tiny_onnx, training_data

PASSED = {"passed": True, "gates": {}}


def _envs(tmp_path: Path, verify: str = "none") -> Path:
    import yaml

    doc = {
        "registry": str(tmp_path / "registry"),
        "environments": {"dev": {"model_repository": str(tmp_path / "envs" / "dev"), "verify": verify}},
    }
    path = tmp_path / "environments.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_deploy_component_unit(artifact, tmp_path: Path, tiny_model_dir: Path) -> None:
    cfg = _envs(tmp_path)
    reg = Registry(tmp_path / "registry")
    onnx = tiny_onnx(tiny_model_dir)
    v1 = reg.register(
        "serengpt", onnx=onnx, tokenizer_dir=tiny_model_dir, validation=PASSED, evaluation={"roc_auc": 0.7}
    )["version"]
    dep, metrics = artifact(dsl.Artifact, "deployment"), artifact(dsl.Metrics, "metrics")
    assert deploy_model.python_func(version=v1, deployment=dep, metrics=metrics, environments=str(cfg)) == ("true",)
    res = json.loads(Path(dep.path).read_text())
    assert res["result"] == "ok" and res["to_env"] == "dev" and res["triton_version"] == 1
    assert (tmp_path / "envs" / "dev" / "serengpt" / "1").is_dir() and reg.pointer("serengpt", "dev").version == v1
    assert metrics.metadata["deployed"] == 1.0 and metrics.metadata["verification"].startswith("none")

    # a worse challenger is refused: an outcome of the step (deployed 'false'), not a failed run
    v2 = reg.register(
        "serengpt", onnx=onnx, tokenizer_dir=tiny_model_dir, validation=PASSED, evaluation={"roc_auc": 0.5}
    )["version"]
    dep2, metrics2 = artifact(dsl.Artifact, "deployment2"), artifact(dsl.Metrics, "metrics2")
    assert deploy_model.python_func(version=v2, deployment=dep2, metrics=metrics2, environments=str(cfg)) == ("false",)
    assert json.loads(Path(dep2.path).read_text())["result"] == "refused" and metrics2.metadata["deployed"] == 0.0
    assert reg.pointer("serengpt", "dev").version == v1 and reg.audit()[-1]["result"] == "refused"


def test_deploy_component_unknown_env_unit(artifact, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown environment 'qa'"):
        deploy_model.python_func(
            version=1,
            deployment=artifact(dsl.Artifact, "d"),
            metrics=artifact(dsl.Metrics, "m"),
            env="qa",
            environments=str(_envs(tmp_path)),
        )


@pytest.mark.integration
def test_release_steps_local(kfp_local, tiny_model_dir: Path, tmp_path: Path) -> None:
    cfg = _envs(tmp_path, verify="local-triton")
    results = tmp_path / "results"
    results.mkdir()
    (results / "ablation.json").write_text(json.dumps({"metrics": {"roc_auc": 0.7}}))
    (tmp_path / "report.md").write_text("# ablation\n")

    @dsl.pipeline(name="release-local-test")
    def pipe(model_uri: str, td_uri: str, results_uri: str, md_uri: str, environments: str):
        m = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model, reimport=False)
        td = dsl.importer(artifact_uri=td_uri, artifact_class=dsl.Dataset, reimport=False)
        ev = dsl.importer(artifact_uri=results_uri, artifact_class=dsl.Artifact, reimport=False)
        md = dsl.importer(artifact_uri=md_uri, artifact_class=dsl.Markdown, reimport=False)
        exp = export_scorer(model=m.output)
        val = validate_scorer(model=m.output, onnx=exp.outputs["onnx"], training_data=td.output, max_rows=24)
        with dsl.If(val.outputs["Output"] == "true", name="validation-passed"):
            reg = register_model(
                model=m.output, onnx=exp.outputs["onnx"], validation=val.outputs["report"], evaluation=ev.output,
                evaluation_report=md.output, environments=environments,
            )  # fmt: skip
            deploy_model(version=reg.outputs["version"], env="dev", environments=environments)

    pipe(model_uri=str(tiny_model_dir), td_uri=str(training_data(tmp_path / "td")), results_uri=str(results),
         md_uri=str(tmp_path / "report.md"), environments=str(cfg))  # fmt: skip
    root = Path(kfp_local)
    # the true branch ran: both of its tasks wrote their outputs
    deployments = list(root.rglob("deploy-model/deployment"))
    assert len(list(root.rglob("register-model/registered"))) == 1 and len(deployments) == 1
    res = json.loads(deployments[0].read_text())
    assert res["result"] == "ok" and res["version"] == 1
    dep = res["deployment"]
    assert dep["verification"].startswith("local-triton") and dep["smoke"]["max_abs_diff"] <= 1e-3
    reports = list(root.rglob("validate-scorer/report"))
    assert len(reports) == 1 and json.loads(reports[0].read_text())["passed"] is True
    reg = Registry(tmp_path / "registry")
    man = reg.manifest("serengpt", 1)
    assert reg.pointer("serengpt", "dev").version == 1 and man["metrics"] == {"roc_auc": 0.7}
    assert man["validation"]["passed"] and {"evaluation.md", "onnx/model.onnx", "model/config.json"} <= set(
        man["files"]
    )
    assert man["metadata"]["model_uri"] == str(tiny_model_dir)
    assert (tmp_path / "envs" / "dev" / "serengpt" / "1" / "manifest.json").is_file()
