"""`seren explore --user U`: last two clusters, table lookup (and its fallback), one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from seren.cli import app
from seren.exploration.pair_table import build_pair_table, load_pair_table, pair_key
from seren.exploration.transitions import cluster_sequences
from seren.exploration.workflow import publish_outputs


@pytest.fixture(scope="module")
def published(
    small_dataset: Path,
    small_ds: Any,
    small_clusters: Any,
    novelty_model: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    root = tmp_path_factory.mktemp("explore")
    small_clusters.save(root / "clusters")
    table = build_pair_table(novelty_model, root / "table", n=3)
    from seren.exploration.seqrec import train_seqrec

    train_seqrec(small_ds, root / "seqrec", epochs=2, dim=16, n_blocks=1, max_len=20, seed=0, progress=False)
    return publish_outputs(
        root / "pub",
        clusters_dir=root / "clusters",
        table_dir=table,
        dataset_dir=small_dataset,
        seqrec_dir=root / "seqrec",
    )


def _user_with_two_clusters(small_ds: Any, small_clusters: Any) -> tuple[str, list[str]]:
    seqs = cluster_sequences(small_ds.interactions, small_clusters.item_to_cluster)
    for user, g in seqs.groupby("user_id"):
        cs = g["cluster_id"].tolist()
        if len(cs) >= 3:
            return str(user), cs[-2:]
    raise AssertionError("no user with a cluster sequence")


def test_explore_shows_last_clusters_and_novel_ones(published: Path, small_ds: Any, small_clusters: Any) -> None:
    user, last = _user_with_two_clusters(small_ds, small_clusters)
    res = CliRunner().invoke(app, ["explore", "--user", user, "--dir", str(published), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [c["cluster_id"] for c in out["last_clusters"]] == last
    table = load_pair_table(published / "pair_table.parquet").set_index("cluster_pair")
    assert [c["cluster_id"] for c in out["novel_clusters"]] == list(table.loc[pair_key(*last), "novel_clusters"])
    assert out["source"] == "table" and not set(last) & {c["cluster_id"] for c in out["novel_clusters"]}
    novel = {c["cluster_id"] for c in out["novel_clusters"]}
    recs = out["recommendations"]
    assert out["recommendations_status"] == "ok" and 0 < len(recs) <= 10
    assert all(r["cluster_id"] in novel and r["title"] for r in recs)  # restricted to the novel clusters
    from seren.data import is_positive

    inter = small_ds.interactions
    liked = set(inter.loc[(inter.user_id == user) & is_positive(inter), "item_id"])
    assert not {r["item_id"] for r in recs} & liked  # already-engaged items are not recommended again
    human = CliRunner().invoke(app, ["explore", "--user", user, "--dir", str(published)])
    assert "last clusters:" in human.output and small_clusters.descriptions[last[1]] in human.output
    assert recs[0]["title"] in human.output


def test_explore_without_recommender_says_so(
    published: Path, small_ds: Any, small_clusters: Any, tmp_path: Path
) -> None:
    user, _ = _user_with_two_clusters(small_ds, small_clusters)
    res = CliRunner().invoke(
        app, ["explore", "--user", user, "--dir", str(published), "--seqrec", str(tmp_path), "--json"]
    )
    out = json.loads(res.output)
    assert out["recommendations"] == [] and out["recommendations_status"].startswith(
        "unavailable: no sequence recommender"
    )


def test_explore_missing_pair_uses_fallback(
    published: Path, small_ds: Any, small_clusters: Any, tmp_path: Path
) -> None:
    user, last = _user_with_two_clusters(small_ds, small_clusters)
    table = load_pair_table(published / "pair_table.parquet")
    table[table["cluster_pair"] != pair_key(*last)].to_parquet(tmp_path / "partial.parquet")
    res = CliRunner().invoke(
        app,
        ["explore", "--user", user, "--dir", str(published), "--table", str(tmp_path / "partial.parquet"), "--json"],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["source"] == "fallback_c2" and len(out["novel_clusters"]) == 3
    assert not set(last) & {c["cluster_id"] for c in out["novel_clusters"]}


def _seren(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "seren"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=os.environ.copy(), timeout=120)


def test_explore_bad_inputs_are_one_line_errors(published: Path, tmp_path: Path) -> None:
    r = _seren("explore", "--user", "nobody", "--dir", str(published))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("error: user 'nobody' has no interactions") and "Fix:" in r.stderr
    r = _seren("explore", "--user", "u1", "--dir", str(tmp_path / "empty"))
    assert r.returncode == 2 and "no exploration outputs" in r.stderr and "Traceback" not in r.stderr
