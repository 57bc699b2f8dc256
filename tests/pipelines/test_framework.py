"""Discovery, versioning, compile, parameters and spec normalisation (no pipeline runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp import components
from kfp.pipeline_spec import pipeline_spec_pb2

import pipelines as P
from pipelines import framework
from seren import __version__
from seren.errors import ConfigError


def test_discovery_follows_conventions() -> None:
    names = P.list_pipelines()
    assert "features" in names
    for name in names:
        info = P.load(name)
        assert info.kfp_name == P.kfp_name(name) == info.pipeline.name
        assert re.fullmatch(r"seren-[a-z0-9-]+", info.kfp_name)  # what KFP accepts as a pipeline name
        assert set(info.default_params) <= set(info.parameter_types())
        assert (info.path / "pipeline.py").is_file()


def test_kfp_names() -> None:
    assert P.kfp_name("features") == "seren-features"
    assert P.kfp_name("serengpt_training") == "seren-serengpt-training"
    assert framework.spec_filename("serengpt_training", "0.1.0+abc1234") == "seren-serengpt-training-0.1.0+abc1234.yaml"


def test_unknown_pipeline_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown pipeline 'nope' \(known: .*features"):
        P.load("nope")


def test_version_carries_package_version_and_git_sha(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SEREN_GIT_SHA", raising=False)
    version = P.pipeline_version()
    assert re.fullmatch(rf"{re.escape(__version__)}\+([0-9a-f]{{7}}|nogit)", version)
    if (Path(framework.PIPELINES_DIR).parent / ".git").exists():
        assert not version.endswith("+nogit")
    monkeypatch.setenv("SEREN_GIT_SHA", "0123456789abcdef")  # how the image is told its commit
    assert P.pipeline_version() == f"{__version__}+0123456"
    monkeypatch.delenv("SEREN_GIT_SHA")
    monkeypatch.setattr("pipelines.framework.discover.PIPELINES_DIR", tmp_path)  # not a git checkout
    assert P.git_sha() == "nogit"


def test_compile_writes_a_versioned_spec_the_sdk_loads(tmp_path: Path) -> None:
    version = P.pipeline_version()
    path = P.compile("features", tmp_path / "out")
    assert path.name == f"seren-features-{version}.yaml"
    doc = P.framework.load_spec(path)[0]
    assert doc["pipelineInfo"]["name"] == "seren-features"
    assert doc["pipelineInfo"]["description"].endswith(f"[seren {version}]")
    assert f"[seren {version}]" in path.read_text().splitlines()[2]  # the "# Description:" header too
    comp = components.load_component_from_file(str(path))
    assert comp.name == "seren-features"
    assert {"source", "n_users", "feast_target", "feast_data_dir"} <= set(comp.component_spec.inputs)
    assert {"dataset", "materialized", "feature_store"} == set(comp.component_spec.outputs)
    spec = json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec())  # strict proto parse
    assert set(spec.root.dag.tasks) == {"ingest", "write-offline-sources", "feast-apply", "materialize"}
    assert all(not t.caching_options.enable_cache for t in spec.root.dag.tasks.values())


def test_parse_params_types_and_errors() -> None:
    got = P.parse_params("features", ["n_users=12", "source=csv", 'mapping={"user_id": "uid"}', "path=a=b.csv"])
    assert got == {"n_users": 12, "source": "csv", "mapping": {"user_id": "uid"}, "path": "a=b.csv"}
    bad = {
        "n_users=1.5": "not an integer",
        "mapping=[1]": "not a JSON object",
        "mapping={oops": "not a JSON object",
        "nope=1": "has no parameter 'nope'",
        "=1": "not KEY=VALUE",
        "n_users": "not KEY=VALUE",
    }
    for item, msg in bad.items():
        with pytest.raises(ConfigError, match=re.escape(msg)):
            P.parse_params("features", [item])


def test_coerce_checks_python_values_too() -> None:
    info = P.load("features")
    assert framework.coerce_params(info, {"n_users": 5, "seed": "3"}) == {"n_users": 5, "seed": 3}
    with pytest.raises(ConfigError, match="not an integer"):
        framework.coerce_params(info, {"n_users": True})


def test_parse_every() -> None:
    assert [P.parse_every(x) for x in ("15m", "30s", "2h", "1d", " 5 m ", "15", "1w", "1.5h")] == [
        900,
        30,
        7200,
        86400,
        300,
        15,
        604800,
        5400,
    ]
    for bad in ("", "m", "0h", "-5m", "1y", "15 minutes"):
        with pytest.raises(ConfigError, match="positive duration"):
            P.parse_every(bad)


def test_normalise_blanks_build_noise_but_not_the_dag() -> None:
    golden = framework.load_spec(framework.golden_path("features"))[0]
    noisy = yaml.safe_load(yaml.safe_dump(golden))
    noisy["sdkVersion"] = "kfp-9.9.9"
    for ex in noisy["deploymentSpec"]["executors"].values():
        ex["container"]["image"] = "example.com/other:1"
        ex["container"]["command"] = ["python", "-c", "pass"]
    noisy["pipelineInfo"]["description"] = noisy["pipelineInfo"]["description"].replace("<version>", "0.1.0+abcdef1")
    assert P.spec_diff(P.normalise_spec(golden), P.normalise_spec(noisy)) == []

    changed = yaml.safe_load(yaml.safe_dump(golden))
    changed["root"]["dag"]["tasks"]["materialize"]["dependentTasks"] = []
    changed["root"]["inputDefinitions"]["parameters"]["n_users"]["defaultValue"] = 7.0
    del changed["root"]["dag"]["tasks"]["feast-apply"]
    diffs = P.spec_diff(P.normalise_spec(golden), P.normalise_spec(changed))
    assert "root.dag.tasks.feast-apply: missing from the compiled spec" in diffs
    assert any(d.startswith("root.dag.tasks.materialize.dependentTasks:") for d in diffs)
    assert "root.inputDefinitions.parameters.n_users.defaultValue: golden 500.0 != compiled 7.0" in diffs


def test_update_golden_is_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regenerating without a DAG change rewrites the same bytes (no sha churn in git)."""
    committed = framework.golden_path("features").read_text()
    monkeypatch.setattr("pipelines.framework.golden.golden_path", lambda name: tmp_path / name / "golden.yaml")
    monkeypatch.setenv("SEREN_GIT_SHA", "fedcba9")
    text = P.update_golden("features").read_text()
    assert "fedcba9" not in text and "[seren <version>]" in text
    assert P.spec_diff(P.normalise_spec(yaml.safe_load(committed)), P.normalise_spec(yaml.safe_load(text))) == []
    assert P.check_golden("features") == []
