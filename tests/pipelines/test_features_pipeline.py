"""The features pipeline run locally through the CLI (kfp.local, SubprocessRunner(use_venv=False)).

kfp.local takes the false branch of a condition it cannot evaluate without failing, so the test
asserts on what the run really wrote: the dataset artifact and rows in the Feast online store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from seren.cli import main
from seren.data import load_dataset


def test_features_pipeline_local_run_fills_the_online_store(capsys: pytest.CaptureFixture[str]) -> None:
    from feature_repo.store import get_online, get_store

    main(
        [
            "pipeline",
            "run",
            "features",
            "--local",
            "--param",
            "n_users=25",
            "--param",
            "n_items=60",
            "--param",
            "seed=5",
            "--json",
        ]
    )
    res = json.loads(capsys.readouterr().out)  # kfp.local's own logs go to the run log, not stdout

    home = Path(os.environ["SEREN_HOME"])
    assert Path(res["pipeline_root"]).parent == home / "pipeline_runs" / "features"
    assert res["params"] == {"source": "synthetic", "n_users": 25, "n_items": 60, "seed": 5}
    assert set(res["tasks"]) == {"ingest", "write-offline-sources", "feast-apply", "materialize"}
    assert json.loads((Path(res["pipeline_root"]) / "result.json").read_text())["run_dir"] == res["run_dir"]
    assert "finished with status" in Path(res["log"]).read_text()

    ds = load_dataset(res["outputs"]["dataset"]["path"])
    assert ds.interactions["user_id"].nunique() == 25 and len(ds.items) == 60
    ingest_metrics = res["tasks"]["ingest"]["artifacts"]["metrics"]["metadata"]
    assert ingest_metrics["interactions_rows"] == len(ds.interactions)

    feature_dir = Path(res["outputs"]["feature_store"])
    assert feature_dir == home / "features"  # feast_data_dir "" = $SEREN_HOME/features
    loaded = res["outputs"]["materialized"]["metadata"]
    assert loaded["user_stats_rows"] == 25 and loaded["item_features_rows"] == 60

    store = get_store("local", feature_dir)
    users = sorted(ds.interactions["user_id"].unique())
    online = get_online(store, "user_stats", users)
    assert (online["status"] == "ok").all(), online[online["status"] != "ok"]
    counts = ds.interactions.groupby("user_id").size()
    assert online.set_index("user_id")["n_events"].astype(int).to_dict() == counts.to_dict()
    items = get_online(store, "item_features", list(ds.items["item_id"][:10]))
    assert (items["status"] == "ok").all()


def test_failed_task_is_one_line_and_leaves_no_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    with pytest.raises(SystemExit) as exit_:
        main(["pipeline", "run", "features", "--local", "--param", "source=csv", "--param", f"path={missing}"])
    assert exit_.value.code != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: pipeline seren-features failed in task 'ingest':")
    assert str(missing) in lines[0] and "file not found" in lines[0] and "full log:" in lines[0]
    assert not (Path(os.environ["SEREN_HOME"]) / "features").exists()  # later steps never ran
