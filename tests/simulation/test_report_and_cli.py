"""The report renders in headless Chromium; `seren simulate` prints the lift table and the path."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seren.cli import app
from seren.simulation import SimConfig
from seren.simulation.report import write_report
from seren.simulation.run import run_simulation

TINY = SimConfig(n_users=60, n_items=120, n_top=4, n_sub=3, history_events=15, rounds=3, retrain_every=2, n_boot=200)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_simulation(TINY, sibling_shares=(0.0,), out_dir=tmp_path_factory.mktemp("rep"))


def test_report_renders_in_headless_chromium(summary: dict, tmp_path: Path) -> None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    page = Path(summary["report"]["html"])
    proc = subprocess.run(
        [exe, *FLAGS, f"--user-data-dir={tmp_path / 'p'}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert dom.count("<polyline") == 7 * 6  # 7 per-round metrics x 6 arms
    text = " ".join(
        html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S))).split()
    )
    assert "Lift over control (95% bootstrap interval over users)" in text
    assert "Judge behind the serendipity arms: behaviour-rate judge" in text
    assert "World sweep" in text and "seren vs random_unexpected" in text
    for arm in ("control", "random_unexpected", "sibling_category", "serendipity", "exploration", "seren"):
        assert f" {arm} " in f" {text} "
    data = json.loads(Path(summary["report"]["json"]).read_text())
    assert (
        data["result"]["table"]["seren"]["total_clicks"]["lift"]
        == summary["result"]["table"]["seren"]["total_clicks"]["lift"]
    )
    assert data["sweep"][0]["hidden_sibling_share"] == 0.0


def test_report_without_simulation_still_writes(tmp_path: Path) -> None:
    paths = write_report(None, tmp_path, "empty")
    assert (
        paths["html"].read_text().startswith("<!doctype html>")
        and json.loads(paths["json"].read_text())["result"] is None
    )


def test_cli_prints_the_lift_table_and_report_path(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "simulate",
            "--users",
            "40",
            "--items",
            "120",
            "--rounds",
            "2",
            "--arms",
            "control,seren",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("arm "))
    assert lines[head].split()[:3] == ["arm", "ser.exposure", "ser.clicks"]
    assert lines[head + 1].startswith("control ") and lines[head + 2].startswith("seren ") and "%" in lines[head + 2]
    assert f"report: {tmp_path / 'simulation.html'}" in res.output
    assert (tmp_path / "simulation.json").is_file()


def test_cli_bad_arm_is_one_line_exit_2() -> None:
    from seren.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--arms", "control,bogus", "--rounds", "1"])
    assert exc.value.code == 2
