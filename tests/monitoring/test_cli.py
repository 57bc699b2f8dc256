"""`seren drift`: summary table / JSON, exit 1 on a failed gate, 0 on pass or no data, one-line errors (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from seren.cli import main

SEREN = Path(sys.executable).parent / "seren"


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 2) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Fix:" in lines[0], lines
    return lines[0]


def test_drift_json_pass_and_no_data(judgment_files, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["drift", "-r", str(judgment_files.reference), "--no-workspace", "--json"]
    main([*base, "-c", str(judgment_files.current_nodrift)])  # returns: exit 0
    out = json.loads(capsys.readouterr().out)  # stdout is pure JSON
    assert out["status"] == "pass" and out["rows"]["current"] == 480

    main([*base, "-c", str(judgment_files.current_nodrift), "--window", "1h", "--end", "2020-01-01T00:00Z"])
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "no_data" and out["message"].startswith("no data in window")


def test_drift_table_and_exit_1_when_a_gate_fails(judgment_files, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["drift", "-r", str(judgment_files.reference), "-c", str(judgment_files.current_drift), "--no-workspace"])
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    for text in ("FAIL", "judgment drift (Evidently)", "candidate_popularity", "gates", "score_ks_pvalue", "reports:"):
        assert text in out, text
    # the same data passes once the gates are set that loose
    main(
        [
            "drift",
            "-r",
            str(judgment_files.reference),
            "-c",
            str(judgment_files.current_drift),
            "--no-workspace",
            "--min-score-ks-pvalue",
            "1e-9",
            "--max-score-psi",
            "0.9",
        ]
    )
    assert "PASS" in capsys.readouterr().out


def test_drift_bad_input_is_one_line(judgment_files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = str(judgment_files.reference), str(judgment_files.current_nodrift)
    missing = tmp_path / "nope.parquet"
    line = _one_line_error(capsys, ["drift", "-r", str(missing), "-c", cur])
    assert f"reference judgments not found at {missing}" in line
    line = _one_line_error(capsys, ["drift", "-r", ref, "-c", str(tmp_path / "absent")])
    assert "current judgments not found" in line

    no_score = tmp_path / "no_score.parquet"
    pd.read_parquet(judgment_files.reference).drop(columns=["score"]).to_parquet(no_score)
    line = _one_line_error(capsys, ["drift", "-r", ref, "-c", str(no_score)])
    assert "judgments lack column(s) score" in line and str(no_score) in line

    line = _one_line_error(capsys, ["drift", "-r", ref, "-c", cur, "--window", "soon"])
    assert "--window 'soon' is not a positive duration" in line
    line = _one_line_error(capsys, ["drift", "-r", ref, "-c", cur, "--max-drift-share", "2"])
    assert "gate max_drift_share" in line
    assert not (Path(os.environ["SEREN_HOME"]) / "reports").exists()  # nothing written for bad input


def test_drift_console_script_exit_status(judgment_files) -> None:
    """The installed `seren` process itself exits 1 on a failed gate (what a cron job or CI step sees)."""
    proc = subprocess.run(
        [
            str(SEREN),
            "drift",
            "-r",
            str(judgment_files.reference),
            "-c",
            str(judgment_files.current_drift),
            "--no-workspace",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["status"] == "fail"
