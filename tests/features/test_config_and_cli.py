"""Target selection, rendered configs, and the `seren features` CLI (happy path in-process,
bad input through the real entry point: one line, non-zero exit)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from feature_repo.config import available_targets, redis_endpoint, render_config, resolve_target
from seren.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SEREN = [sys.executable, "-c", "from seren.cli import main; main()"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([*SEREN, *args], capture_output=True, text=True, env=full_env, cwd=REPO, timeout=120)


def test_targets_and_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"local", "redis", "gcp", "gcp-datastore"} <= set(available_targets())
    monkeypatch.delenv("SEREN_FEAST_TARGET", raising=False)
    assert resolve_target() == "local"
    monkeypatch.setenv("SEREN_FEAST_TARGET", "redis")
    assert resolve_target() == "redis"
    assert resolve_target("local") == "local"  # an explicit target wins over the env
    monkeypatch.setenv("SEREN_FEAST_TARGET", "mars")
    with pytest.raises(ConfigError, match="unknown feature store target 'mars'"):
        resolve_target()


def test_local_config_points_into_data_dir(tmp_path: Path) -> None:
    cfg = render_config("local", tmp_path / "fs")
    assert cfg["online_store"] == {"type": "sqlite", "path": str(tmp_path / "fs" / "online_store.db")}
    assert cfg["registry"]["path"] == str(tmp_path / "fs" / "registry.db")
    assert cfg["offline_store"]["type"] == "file"


def test_redis_url_forms(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEREN_REDIS_URL", "redis://cache.internal:6380/2")
    conn = render_config("redis", tmp_path)["online_store"]["connection_string"]
    assert conn == "cache.internal:6380,db=2"
    assert redis_endpoint(conn) == ("cache.internal", 6380, {"db": "2"})
    with pytest.raises(ConfigError, match="bad Redis address"):
        redis_endpoint("cache.internal:notaport")


def test_gcp_target(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("SEREN_GCP_PROJECT", "SEREN_GCS_BUCKET"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="needs SEREN_GCP_PROJECT|needs SEREN_GCS_BUCKET"):
        render_config("gcp-datastore", tmp_path)
    monkeypatch.setenv("SEREN_GCP_PROJECT", "proj")
    monkeypatch.setenv("SEREN_GCS_BUCKET", "bucket")
    cfg = render_config("gcp-datastore", tmp_path)
    assert cfg["registry"]["path"] == "gs://bucket/feast/registry.pb"
    assert cfg["offline_store"] == {
        "type": "bigquery",
        "project_id": "proj",
        "dataset": "seren_features",
        "location": "US",
    }
    assert cfg["online_store"]["type"] == "datastore"

    from feature_repo import store as fs

    if importlib.util.find_spec("google.cloud.bigquery") is None:
        with pytest.raises(ConfigError, match="needs a package that is not installed"):
            fs.get_store("gcp-datastore", tmp_path)
    else:  # pragma: no cover - with the gcp extra installed the config must load
        assert fs.get_store("gcp-datastore", tmp_path).config.offline_store.type == "bigquery"


def test_cli_workflow(small_dataset: Path, tmp_path: Path) -> None:
    from seren.cli import app

    runner = CliRunner()
    fdir = str(tmp_path / "fs")
    res = runner.invoke(app, ["features", "apply", "--data", str(small_dataset), "--features-dir", fdir, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["target"] == "local" and "feature_view:user_candidates" in out["applied"]
    assert Path(out["offline_tables"]["user_stats"]).exists()

    res = runner.invoke(app, ["features", "materialize", "--features-dir", fdir, "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["rows"]
    assert rows["user_stats"] == 80 and rows["item_features"] == 160 and rows["user_profile"] == 0

    res = runner.invoke(
        app, ["features", "get", "--view", "user_stats", "--ids", "u00001,ghost", "--features-dir", fdir, "--json"]
    )
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)["rows"]
    assert [r["status"] for r in got] == ["ok", "missing"]
    assert got[0]["n_events"] > 0 and got[1]["n_events"] is None

    res = runner.invoke(app, ["features", "get", "--view", "user_stats", "--ids", "u00001", "--features-dir", fdir])
    assert res.exit_code == 0 and "category_entropy" in res.stdout and "u00001" in res.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["apply", "--target", "mars"], 2, "unknown feature store target 'mars'"),
        (["get", "--view", "nope", "--ids", "u1"], 2, "unknown feature view 'nope'"),
        (
            ["get", "--view", "user_stats", "--ids", "u1", "--max-age", "soon"],
            2,
            "--max-age 'soon' is not a positive duration",
        ),
        (["get", "--view", "user_stats", "--ids", " , "], 2, "--ids is empty"),
        (["materialize", "--view", "user_stats", "--end", "someday"], 2, "cannot parse time 'someday'"),
    ],
)
def test_cli_bad_input_one_line(args: list[str], code: int, message: str) -> None:
    res = run_cli("features", *args)
    assert res.returncode == code, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0] and "Fix:" in lines[0]


def test_cli_unreachable_redis_names_host_and_port() -> None:
    port = _free_port()
    res = run_cli(
        "features",
        "get",
        "--target",
        "redis",
        "--view",
        "user_stats",
        "--ids",
        "u1",
        env={"SEREN_REDIS_URL": f"127.0.0.1:{port}"},
    )
    assert res.returncode == 3
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port} is unreachable" in lines[0] and "redis-server" in lines[0]


def test_unknown_target_leaves_no_files(tmp_path: Path) -> None:
    res = run_cli("features", "apply", "--target", "mars", "--features-dir", str(tmp_path / "fs"))
    assert res.returncode == 2 and not (tmp_path / "fs").exists()
