"""The HTML reports open in a real headless Chromium and render their sections.

Evidently's pages are a React app inlined in one file: the sections exist only after its
JavaScript ran, so the check reads Chromium's DOM (--dump-dom), not the file.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from monitoring.drift import run_drift
from monitoring.synthetic import synthetic_judgments
from seren.data import load_dataset

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=20000",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            "apt-get update -qq && apt-get install -y -qq chromium", shell=True, capture_output=True, timeout=900
        )
        exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium is not installed and could not be installed here (Debian: apt-get install -y chromium)")
    return exe


def _rendered_text(chromium: str, page: Path, profile: Path) -> str:
    proc = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", proc.stdout, flags=re.S | re.I)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())


@pytest.fixture(scope="module")
def full_run(judgment_files, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A run with all three Evidently reports: validation-time judgments on both sides, so both have feedback."""
    ds = load_dataset(judgment_files.dataset)
    cur = synthetic_judgments(ds, users=sorted(set(judgment_files.nodrift_df["user_id"])))
    return run_drift(
        judgment_files.reference_df,
        cur,
        window="all",
        dataset=judgment_files.dataset,
        reports_dir=tmp_path_factory.mktemp("reports"),
        workspace=False,
    )


def test_evidently_reports_render_their_sections(full_run, chromium: str, tmp_path: Path) -> None:
    run_dir = Path(full_run["reports_dir"])
    assert set(full_run["files"]) == {"judgment_drift", "judgment_quality", "recommender_quality"}

    drift = _rendered_text(chromium, run_dir / "judgment_drift.html", tmp_path / "p1")
    for text in ("Dataset Drift", "Data Drift Summary", "Share of Drifted Columns", "K-S p_value"):
        assert text in drift, text
    for column in ("score", "judged_serendipitous", "profile_tokens", "category_entropy", "candidate_popularity"):
        assert column in drift, column
    assert drift.startswith("Metrics Tests")  # the two tabs (the gates' Evidently tests behind the second)

    quality = _rendered_text(chromium, run_dir / "judgment_quality.html", tmp_path / "p2")
    assert "Precision" in quality and "Recall" in quality

    recs = _rendered_text(chromium, run_dir / "recommender_quality.html", tmp_path / "p3")
    k = full_run["recsys_k"]
    for title in (f"Novelty (top-{k})", f"Diversity (top-{k})", f"Serendipity (top-{k})", f"Personalization (top-{k})"):
        assert title in recs, title
    assert "Popularity" in recs


def test_run_page_and_index_render(full_run, chromium: str, tmp_path: Path) -> None:
    run_dir = Path(full_run["reports_dir"])
    page = _rendered_text(chromium, run_dir / "index.html", tmp_path / "p4")
    for text in (
        f"Judgment monitoring run {full_run['run_id']}",
        f"Status: {full_run['status']}",
        "Gates",
        "score_ks_pvalue",
        "Judgment drift",
        "Judgment quality vs feedback",
        "Recommender quality",
        "Evidently reports",
    ):
        assert text in page, text
    index = _rendered_text(chromium, run_dir.parent / "index.html", tmp_path / "p5")
    assert "seren judgment monitoring: 1 run(s)" in index and full_run["run_id"] in index
