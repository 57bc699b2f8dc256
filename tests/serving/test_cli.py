"""`seren serve` and `seren query` as a user runs them (installed entry point, real server, real Feast)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from serving.triton import free_port

from .conftest import ITEMS, PROFILES

pytestmark = pytest.mark.integration
SEREN = Path(sys.executable).with_name("seren")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SEREN), *args], capture_output=True, text=True, timeout=120)


def test_query_raw_texts_json(triton, tiny_scorer) -> None:
    res = _run(
        "query",
        "--url",
        f"grpc://{triton.grpc_url}",
        "--profile-text",
        PROFILES[0],
        "--item-text",
        ITEMS[0],
        "--item-text",
        ITEMS[1],
        "--json",
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["protocol"] == "grpc" and [r["item"] for r in out["scores"]] == ["item_0", "item_1"]
    np.testing.assert_allclose(
        [r["score"] for r in out["scores"]], tiny_scorer.score(PROFILES[0], ITEMS[:2]), atol=1e-5
    )


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (
            ["--url", "127.0.0.1:{closed}", "--profile-text", "p", "--item-text", "i", "--retries", "1"],
            3,
            "unreachable",
        ),
        (["--url", "{http}", "--model", "nope", "--profile-text", "p", "--item-text", "i"], 3, "unknown to Triton"),
        (["--url", "{http}", "--profile-text", "p"], 2, "give exactly one of --items or --item-text"),
        (["--url", "{http}", "--item-text", "i"], 2, "give exactly one of --user or --profile-text"),
        (["--url", "ftp://x:1", "--profile-text", "p", "--item-text", "i"], 2, "unsupported URL scheme"),
    ],
)
def test_query_errors_are_one_line(triton, args: list[str], code: int, needle: str) -> None:
    args = [a.format(closed=free_port(), http=triton.http_url) for a in args]
    res = _run("query", *args)
    assert res.returncode == code, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0] and "Fix:" in lines[0]


def test_query_user_reads_profile_and_items_from_feast(
    triton, tiny_scorer, small_dataset: Path, tmp_path: Path
) -> None:
    """Profile from the user_profile view (pushed), item texts from item_features (materialized)."""
    from feature_repo.store import apply, get_store, materialize, push, write_offline
    from seren.cli import app
    from seren.data import load_dataset
    from seren.profiles.text import item_text

    ds = load_dataset(small_dataset)
    feast_dir = tmp_path / "features"
    store = get_store("local", feast_dir)
    write_offline(ds, feast_dir)
    apply(store)
    materialize(store, views=["item_features"])
    user = str(ds.interactions["user_id"].iloc[0])
    profile = "Buys hiking gear and reads about birds; lately curious about jazz."
    push(
        store,
        "user_profile_push",
        pd.DataFrame({"user_id": [user], "profile_text": [profile], "profile_tokens": [14]}),
        to="online",
    )
    item_ids = [str(i) for i in ds.items["item_id"].iloc[:3]]

    res = CliRunner().invoke(
        app,
        [
            "query",
            "--url",
            triton.http_url,
            "--user",
            user,
            "--items",
            ",".join(item_ids),
            "--feast-dir",
            str(feast_dir),
            "--feast-target",
            "local",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [r["item"] for r in out["scores"]] == item_ids and out["user"] == user
    texts = item_text(ds.items.set_index("item_id").loc[item_ids].reset_index()).tolist()
    np.testing.assert_allclose([r["score"] for r in out["scores"]], tiny_scorer.score(profile, texts), atol=1e-5)

    res = _run(
        "query",
        "--url",
        triton.http_url,
        "--user",
        "no-such-user",
        "--items",
        item_ids[0],
        "--feast-dir",
        str(feast_dir),
        "--feast-target",
        "local",
    )
    assert (
        res.returncode == 2
        and "no profile for user 'no-such-user'" in res.stderr
        and len(res.stderr.strip().splitlines()) == 1
    )


def test_serve_builds_serves_until_sigterm_and_stops_cleanly(tiny_model_dir: Path, tmp_path: Path) -> None:
    """`seren serve --build-from MODEL` exports, builds the default repository, serves, and stops on SIGTERM."""
    home = tmp_path / "home"
    env = dict(os.environ, SEREN_HOME=str(home))
    args = ["serve", "--build-from", str(tiny_model_dir), "--http-port", "0", "--grpc-port", "0", "--json"]
    proc = subprocess.Popen([str(SEREN), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # printed once the server is ready and serengpt is loaded
        assert line, proc.stderr.read()
        info = json.loads(line)
        assert info["model_repository"] == str(home / "triton" / "model_repository")
        assert (home / "triton" / "model_repository" / "scorer" / "1" / "model.onnx").is_file()
        res = _run(
            "query", "--url", info["http_url"], "--profile-text", "likes jazz", "--item-text", "a record", "--json"
        )
        assert res.returncode == 0, res.stderr
        assert 0.0 < json.loads(res.stdout)["scores"][0]["score"] < 1.0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        with pytest.raises(ProcessLookupError):
            os.kill(info["pid"], 0)  # tritonserver went down with `seren serve`
        assert "Signal (15) received" in Path(info["log_file"]).read_text()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_missing_repo_is_one_line(tmp_path: Path) -> None:
    res = _run("serve", str(tmp_path / "nope"), "--http-port", "0", "--grpc-port", "0")
    assert (
        res.returncode == 2
        and res.stderr.startswith("error: model repository")
        and len(res.stderr.strip().splitlines()) == 1
    )
