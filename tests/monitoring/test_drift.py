"""run_drift end to end on the stand-in judgments: the gates fire for a shifted population and not for
a fresh sample of the same one; reports, index and workspace are written; empty windows and
feedback are handled."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from monitoring.drift import run_drift
from monitoring.judgments import attach_feedback
from seren.data import load_dataset


def _home() -> Path:
    return Path(os.environ["SEREN_HOME"])


def test_same_population_passes_and_writes_reports_index_and_workspace(judgment_files) -> None:
    res = run_drift(judgment_files.reference, judgment_files.current_nodrift, window="1d")

    assert res["status"] == "pass" and res["drifted"] is False, res["gates"]
    assert res["rows"] == {"reference": 480, "current": 480, "current_all": 480}
    assert all(g["passed"] for g in res["gates"])
    assert [c["column"] for c in res["columns"]] == [
        "score",
        "judged_serendipitous",
        "profile_tokens",
        "category_entropy",
        "candidate_popularity",
    ]
    assert res["drift_share"] < 0.5 and res["score_ks_pvalue"] >= 0.01 and res["score_psi"] < 0.2

    run_dir = _home() / "reports" / res["run_id"]  # default reports dir: $SEREN_HOME/reports/<run id>
    assert Path(res["reports_dir"]) == run_dir.resolve()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "pass"
    snapshot_json = json.loads((run_dir / "judgment_drift.json").read_text())
    assert {t["status"] for t in snapshot_json["tests"]} <= {"SUCCESS", "FAIL", "WARNING"}
    assert (run_dir / "judgment_drift.html").stat().st_size > 100_000  # Evidently's standalone page
    page = (run_dir / "index.html").read_text()
    assert 'class="pass">pass' in page and "judgment_drift.html" in page
    index = (_home() / "reports" / "index.html").read_text()
    assert f'href="{res["run_id"]}/index.html"' in index

    # the snapshot is in the Evidently workspace that `evidently ui --workspace` serves
    from evidently.ui.workspace import Workspace

    ws = Workspace(str(_home() / "evidently_workspace"))
    (project,) = ws.search_project("seren-monitoring")
    assert str(project.id) == res["workspace"]["project_id"]
    assert {str(s) for s in ws.list_runs(project.id)} == set(res["workspace"]["snapshots"].values())


def test_shifted_population_fails_the_gates_with_recommender_quality(judgment_files) -> None:
    res = run_drift(
        judgment_files.reference, judgment_files.current_drift, dataset=judgment_files.dataset, workspace=False
    )

    assert res["status"] == "fail" and res["drifted"] is True
    failed = {g["name"] for g in res["gates"] if not g["passed"]}
    assert "score_ks_pvalue" in failed and res["score_ks_pvalue"] < 0.01
    by = {c["column"]: c for c in res["columns"]}
    assert by["score"]["drifted"] and by["candidate_popularity"]["drifted"]
    assert by["score"]["current_mean"] > by["score"]["reference_mean"]  # the new users' categories score higher
    # current judgments are an hour old: the interaction log has no feedback for them yet
    assert res["quality"] is None
    precision = next(g for g in res["gates"] if g["name"] == "precision_drop")
    assert precision["passed"] and "no feedback" in precision["skipped"]
    # recommender quality of both slates (8 judged candidates per user)
    assert res["recsys_k"] == 8 and set(res["recsys"]) == {"current", "reference"}
    cur, ref = res["recsys"]["current"], res["recsys"]["reference"]
    assert cur["users"] == ref["users"] == 60 and cur["users_short_slate"] == 0
    assert 0 < cur["personalization"] <= 1 and 0 < cur["coverage"] <= 1 and cur["novelty"] > 0
    assert cur["serendipity"] is None  # no relevant items without feedback
    assert ref["serendipity"] is not None  # the reference judgments have 7+ days of later interactions
    assert (Path(res["reports_dir"]) / "recommender_quality.html").is_file()
    assert res["workspace"] is None and not (_home() / "evidently_workspace").exists()

    # gates are configurable: accept this much score drift and the same run passes
    lax = run_drift(
        judgment_files.reference,
        judgment_files.current_drift,
        gates={"min_score_ks_pvalue": 1e-6, "max_score_psi": 0.5},
        workspace=False,
    )
    assert lax["status"] == "pass" and lax["score_ks_pvalue"] == pytest.approx(res["score_ks_pvalue"])
    index = (_home() / "reports" / "index.html").read_text()
    assert index.count('class="fail">fail') == 1 and index.count('class="pass">pass') == 1


def test_empty_window_is_no_data_not_a_crash(judgment_files) -> None:
    last_week = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=7)).isoformat()
    res = run_drift(judgment_files.reference, judgment_files.current_nodrift, window="1d", end=last_week)
    assert res["status"] == "no_data" and res["drifted"] is False
    assert res["message"].startswith("no data in window") and "480 outside it" in res["message"]
    assert res["rows"]["current"] == 0 and res["gates"] == [] and res["files"] == {}
    run_dir = Path(res["reports_dir"])
    assert sorted(p.name for p in run_dir.iterdir()) == ["index.html", "summary.json"]
    assert "no data in window" in (run_dir / "index.html").read_text()
    assert 'class="no_data">no_data' in (_home() / "reports" / "index.html").read_text()


def test_feedback_quality_and_precision_drop_gate(judgment_files) -> None:
    ds = load_dataset(judgment_files.dataset)
    # both sides judged at validation time on the same population: feedback from the later interactions
    ref = judgment_files.reference_df
    users_b = sorted(set(judgment_files.nodrift_df["user_id"]))
    from monitoring.synthetic import synthetic_judgments

    cur = synthetic_judgments(ds, users=users_b)
    res = run_drift(ref, cur, window="all", dataset=judgment_files.dataset, workspace=False)
    expected = {}
    for side, df in (("reference", ref), ("current", cur)):
        known = attach_feedback(df, ds.interactions).dropna(subset=["feedback"])
        tp = int(((known["judged_serendipitous"] == 1) & (known["feedback"] == 1)).sum())
        expected[side] = (tp / int(known["judged_serendipitous"].sum()), tp / int(known["feedback"].sum()), len(known))
    for side, (precision, recall, rows) in expected.items():
        q = res["quality"][side]
        assert (q["precision"], q["recall"], q["rows"]) == (pytest.approx(precision), pytest.approx(recall), rows)
    drop = next(g for g in res["gates"] if g["name"] == "precision_drop")
    assert drop["skipped"] is None and drop["value"] == pytest.approx(expected["reference"][0] - expected["current"][0])
    assert (Path(res["reports_dir"]) / "judgment_quality.html").is_file()

    assert drop["passed"] and res["status"] == "pass"  # same judge, same population: precision holds

    # a judge that got worse: validated where its "serendipitous" calls all met engagement (precision 1),
    # now calling "serendipitous" exactly where users did not engage (precision 0)
    validated = ref.assign(feedback=ref["judged_serendipitous"].astype("Int64"))
    judged = attach_feedback(cur, ds.interactions)
    worse = judged.assign(judged_serendipitous=(judged["feedback"].fillna(0) == 0).astype(int))
    bad = run_drift(validated, worse, window="all", workspace=False)
    assert bad["quality"]["reference"]["precision"] == 1.0 and bad["quality"]["current"]["precision"] == 0.0
    drop = next(g for g in bad["gates"] if g["name"] == "precision_drop")
    assert drop["value"] == 1.0 and not drop["passed"] and bad["status"] == "fail"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_evidently_ui_serves_the_workspace(judgment_files, tmp_path: Path) -> None:
    """`evidently ui --workspace DIR`, started for real on a free loopback port, lists the run's snapshots."""
    res = run_drift(judgment_files.reference, judgment_files.current_drift, workspace=tmp_path / "ws")
    port = _free_port()
    evidently = Path(sys.executable).parent / "evidently"
    env = {**os.environ, "DO_NOT_TRACK": "1"}  # no usage telemetry from the UI service
    cmd = [str(evidently), "ui", "--workspace", str(tmp_path / "ws"), "--host", "127.0.0.1", "--port", str(port)]
    with open(tmp_path / "ui.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        url, deadline, projects = f"http://127.0.0.1:{port}/api/projects", time.monotonic() + 180, None
        while projects is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    projects = json.load(r)
            except OSError:
                time.sleep(0.5)
        assert projects is not None, (tmp_path / "ui.log").read_text()[-2000:]
        (project,) = [p for p in projects if p["name"] == "seren-monitoring"]
        assert project["id"] == res["workspace"]["project_id"]
        with urllib.request.urlopen(f"{url}/{project['id']}/snapshots", timeout=10) as r:
            snapshots = json.load(r)
        assert {s["id"] for s in snapshots} == set(res["workspace"]["snapshots"].values())
        names = sorted(s["name"] for s in snapshots)
        assert names == [f"judgment_drift {res['run_id']}"] and snapshots[0]["metadata"]["run_id"] == res["run_id"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
