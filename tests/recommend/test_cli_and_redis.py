"""`seren recommend` through the real entry point (one-line errors, exit codes), and the same
request served from a real redis-server online store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from seren.errors import ServiceError
from seren.recommend import recommend

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MAIN = [f"i{n:05d}" for n in range(30, 42)]


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from seren.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_cli_slate_json_and_text(store: Any, cache: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from seren.cli import app

    cache.candidates(store, "r-cli", MAIN, ["i00140", "i00141"], [0.3, 0.8], ["i00150"], pair="c1|c2")
    fdir = str(store.config.repo_path)
    res = CliRunner().invoke(app, ["recommend", "--user", "r-cli", "--k", "7", "--features-dir", fdir, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [s["source"] for s in out["slate"]] == ["main", "main", "serendipity", "main", "main", "main", "serendipity"]
    assert [s["item_id"] for s in out["slate"] if s["source"] == "serendipity"] == ["i00141", "i00140"]
    assert out["fallbacks"] == ["exploration: no novel-interest row for pair c1|c2"]

    rc, text, err = run_main(
        capsys, "recommend", "--user", "r-cli", "--features-dir", fdir, "--serendipity", "1", "--explore", "0"
    )
    assert rc == 0 and err == ""
    lines = text.splitlines()
    assert lines[0] == "user r-cli (k=10, cluster pair c1|c2)"
    assert lines[4].split()[:3] == ["3", "i00141", "serendipity(0.80)"] and len(lines) == 12


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--user", "nobody"], 2, "unknown user 'nobody'"),
        (["--user", "u00002"], 2, "no cached recommendations"),
        (["--user", "r-x", "--k", "0"], 2, "k=0 is out of range"),
        (["--user", "r-x", "--serendipity", "-1"], 2, "negative slot count"),
        (["--user", "r-x", "--max-age", "soon"], 2, "--max-age 'soon' is not a positive duration"),
        (["--user", "r-x", "--target", "mars"], 2, "unknown feature store target 'mars'"),
    ],
)
def test_cli_bad_input_one_line(
    store: Any, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    rc, out, err = run_main(capsys, "recommend", *args, "--features-dir", str(store.config.repo_path))
    lines = err.strip().splitlines()
    assert rc == code and out == ""
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0] and "Fix:" in lines[0]


def test_cli_unreachable_redis_one_line(tmp_path: Path) -> None:
    """The real `seren` process, with nothing listening on the Redis port."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "SEREN_REDIS_URL": f"127.0.0.1:{port}"}
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "from seren.cli import main; main()",
            "recommend",
            "--user",
            "u1",
            "--target",
            "redis",
            "--features-dir",
            str(tmp_path / "fs"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 3 and res.stdout == ""
    assert len(lines) == 1 and f"127.0.0.1:{port} is unreachable" in lines[0] and "Fix:" in lines[0]


def test_redis_store_serves_the_same_slate(
    redis_server: Any, cache: Any, small_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feature_repo import store as fs

    monkeypatch.setenv("SEREN_REDIS_URL", redis_server.url)
    st = cache.build_store("redis", tmp_path / "features", small_dataset)
    try:
        cache.candidates(st, "r-redis", MAIN, ["i00140", "i00141", "i00142"], [0.3, 0.8, 0.5], ["i00150"], pair="c1|c2")
        cache.novel(st, "c1|c2", ["c4"], [0.7])
        res = recommend(st, "r-redis")
        assert res["fallbacks"] == []
        assert [s["item_id"] for s in res["slate"][:7]] == [
            MAIN[0],
            MAIN[1],
            "i00141",
            MAIN[2],
            "i00150",
            MAIN[3],
            "i00142",
        ]
        assert res["slate"][4]["label"] == "exploration(c4)" and res["slate"][0]["title"]
        redis_server.stop()  # the store goes away: one-line ServiceError, not a redis traceback
        with pytest.raises(ServiceError, match=f"127.0.0.1:{redis_server.port} is unreachable"):
            recommend(st, "r-redis")
    finally:
        if redis_server.proc.poll() is None:
            fs.teardown(st)


def test_cli_now_option(store: Any, cache: Any, capsys: pytest.CaptureFixture[str]) -> None:
    cache.candidates(store, "r-cli-now", MAIN, ["i00140"], [0.8], when=datetime(2024, 3, 1, tzinfo=UTC))
    fdir = str(store.config.repo_path)
    rc, out, _ = run_main(
        capsys, "recommend", "-u", "r-cli-now", "--now", "2024-03-02", "--features-dir", fdir, "--json"
    )
    got = json.loads(out)
    assert rc == 0 and got["slate"][2]["item_id"] == "i00140" and got["sources"]["user_candidates"]["status"] == "ok"
    rc, out, err = run_main(capsys, "recommend", "-u", "r-cli-now", "--now", "someday", "--features-dir", fdir)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--now: cannot parse time 'someday'" in err
