"""`seren pipeline ...` commands and their one-line errors (run in-process through seren.cli.main)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kfp import components
from typer.testing import CliRunner

import pipelines as P
from pipelines import framework
from seren.cli import app, main


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and ". Fix: " in lines[0], lines
    return lines[0]


def test_help_on_every_command() -> None:
    runner = CliRunner()
    for cmd in ([], ["list"], ["compile"], ["run"], ["submit"], ["schedule"]):
        res = runner.invoke(app, ["pipeline", *cmd, "--help"])
        assert res.exit_code == 0 and "Usage" in res.output, cmd


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    main(["pipeline", "list", "--json"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["features"]["kfp_name"] == "seren-features"
    assert rows["features"]["parameters"]["n_users"] == "NUMBER_INTEGER"
    assert rows["features"]["default_params"]["source"] == "synthetic"


def test_compile_one_and_all(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    main(["pipeline", "compile", "features", "--out", str(tmp_path / "one"), "--json"])
    out = json.loads(capsys.readouterr().out)
    spec = Path(out["specs"]["features"])
    assert spec.name == f"seren-features-{out['version']}.yaml" and spec.parent == tmp_path / "one"
    assert components.load_component_from_file(str(spec)).name == "seren-features"

    main(["pipeline", "compile", "--all", "--out", str(tmp_path / "all"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert set(out["specs"]) == set(P.list_pipelines())
    assert all(Path(p).is_file() for p in out["specs"].values())


def test_compile_golden_writes_the_golden(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # not the repo's golden
    monkeypatch.setattr("pipelines.framework.golden.golden_path", lambda name: tmp_path / name / "golden.yaml")
    main(["pipeline", "compile", "features", "--golden"])
    written = tmp_path / "features" / "golden.yaml"
    assert str(written) in capsys.readouterr().out
    monkeypatch.undo()
    committed = yaml.safe_load(framework.golden_path("features").read_text())
    assert P.spec_diff(P.normalise_spec(committed), P.normalise_spec(yaml.safe_load(written.read_text()))) == []


def test_bad_input_gives_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        ("pipeline", "compile"): "exactly one of NAME or --all",
        ("pipeline", "compile", "features", "--all"): "exactly one of NAME or --all",
        ("pipeline", "compile", "nope"): "unknown pipeline 'nope'",
        ("pipeline", "run", "features"): "only runs locally",
        ("pipeline", "run", "nope", "--local"): "unknown pipeline 'nope'",
        ("pipeline", "run", "features", "--local", "--param", "n_users=many"): "n_users='many' is not an integer",
        ("pipeline", "run", "features", "--local", "--param", "colour=red"): "has no parameter 'colour'",
        ("pipeline", "run", "features", "--local", "--param", "n_users"): "is not KEY=VALUE",
        ("pipeline", "submit", "features"): "no Kubeflow Pipelines host",
        ("pipeline", "submit", "features", "--host", "ftp://x"): "not an http(s) URL",
        (
            "pipeline",
            "schedule",
            "features",
            "--host",
            "http://127.0.0.1:1",
            "--every",
            "soon",
        ): "not a positive duration",
    }
    for argv, expected in cases.items():
        assert expected in _error_line(capsys, list(argv)), argv
