"""Issue 12: training steps reach the terminal of `seren pipeline run` / the demo as progress events."""

from __future__ import annotations

import io
import json

import pytest

from seren import progress


def test_emit_only_when_enabled_and_round_trips(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv(progress.ENV, raising=False)
    assert progress.emit("sft", 1, 4, loss=0.5) is None
    assert capsys.readouterr().out == ""  # a CLI's stdout (--json) stays clean
    monkeypatch.setenv(progress.ENV, "1")
    progress.emit("sft", 0, 4)
    ev = progress.emit("sft", 2, 4, loss=0.25)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("SEREN_PROGRESS {")
    parsed = progress.parse("12:00:01 [distill] " + out[1])  # kfp.local prefixes component output
    assert parsed == ev and parsed["step"] == 2 and parsed["total"] == 4 and parsed["loss"] == 0.25
    # ETA: the remaining 2 steps at the pace of the first 2
    assert parsed["eta_s"] == pytest.approx(parsed["elapsed_s"], abs=0.11)
    assert progress.parse("no event here") is None and progress.parse("SEREN_PROGRESS {broken") is None


def test_describe() -> None:
    text = progress.describe({"stage": "sft", "step": 12, "total": 144, "loss": 0.41234, "eta_s": 185.0})
    assert text == "sft 12/144  loss 0.4123  ETA 3m05s"
    assert progress.describe({"stage": "align-ipo", "step": 1, "total": 8, "eta_s": None}) == "align-ipo 1/8"


def test_local_runner_forwards_progress_lines_with_the_running_task() -> None:
    from pipelines.framework.local import _LogTee

    events: list[tuple[str, str, str]] = []
    log = io.StringIO()
    tee = _LogTee(log, lambda *e: events.append(e))
    line = "SEREN_PROGRESS " + json.dumps({"stage": "sft", "step": 3, "total": 10, "loss": 0.5, "eta_s": 70})
    tee.write("Executing task 'distill'\n" + line[:20])
    tee.write(line[20:] + "\nTask 'distill' finished with status SUCCESS\n")
    assert events == [
        ("start", "distill", ""),
        ("progress", "distill", "sft 3/10  loss 0.5000  ETA 1m10s"),
        ("done", "distill", "SUCCESS"),
    ]
    assert line in log.getvalue()  # the run log keeps every line


def test_display_prints_plain_lines_off_a_terminal(capsys) -> None:
    d = progress.Display(every_s=3600)
    d.update("distill", "sft 1/3  loss 0.5")
    d.update("distill", "sft 2/3  loss 0.4")  # throttled
    d.update("distill", "sft 3/3  loss 0.3")  # the last step always shows
    d.stop()
    err = capsys.readouterr().err.splitlines()
    assert err == ["   distill: sft 1/3  loss 0.5", "   distill: sft 3/3  loss 0.3"]
