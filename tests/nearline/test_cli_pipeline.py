"""`seren nearline run` (one-line errors, --every loop), the nearline pipeline through kfp.local, and
its Kubeflow recurring run against the fake KFP API server (mocked_kfp_cluster)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import pipelines as P
from seren.cli import main
from seren.nearline import WatermarkStore, nearline_dir

pytestmark = pytest.mark.integration


def _args(data: Path, triton_url: str, exploration_dir: Path, model: Path, feast_dir: Path) -> list[str]:
    return [
        "--data", str(data), "--url", triton_url, "--exploration", str(exploration_dir), "--model", str(model),
        "--token-budget", "48", "--k-main", "4", "--k-explore", "3", "--n-novel", "2", "--top-n", "3",
        "--threshold", "0", "--target", "local", "--features-dir", str(feast_dir),
        "--judgments", str(feast_dir.parent / "judgments"),
    ]  # fmt: skip


def _json_docs(text: str) -> list[dict]:
    dec, docs, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        obj, i = dec.raw_decode(text, i)
        docs.append(obj)
    return docs


def test_cli_every_loops_and_prints_json_per_run(few_users, triton, exploration_dir, tiny_model_dir, tmp_path, capsys):
    main(
        [
            "nearline",
            "run",
            *_args(few_users, triton.http_url, exploration_dir, tiny_model_dir, tmp_path / "features"),
            "--every",
            "0.2",
            "--max-runs",
            "2",
            "--json",
        ]
    )
    cap = capsys.readouterr()
    first, second = _json_docs(cap.out)  # stdout is pure JSON; progress/stages go to stderr
    assert first["users_refreshed"] == 4 and first["pushed"]["user_candidates"] == 4
    assert second["users_changed"] == 0 and second["watermark_after"] == first["watermark_after"]
    assert "nearline: scoring" in cap.err and "nearline: feast_writes" in cap.err
    main(["nearline", "status", "--features-dir", str(tmp_path / "features"), "--json"])
    assert json.loads(capsys.readouterr().out)["watermark"] == first["watermark_after"]


def test_cli_human_summary_has_stage_timings(few_users, triton, exploration_dir, tiny_model_dir, tmp_path, capsys):
    main(["nearline", "run", "--once", *_args(few_users, triton.http_url, exploration_dir, tiny_model_dir, tmp_path)])
    out = capsys.readouterr().out
    assert "4 user(s) refreshed" in out
    for stage in ("profiles", "candidates", "scoring", "feast_writes"):
        assert f"{stage} " in out


def _closed_port() -> int:
    from serving.triton import free_port

    return free_port()


def test_cli_feast_unavailable_is_one_line(
    few_users, exploration_dir, tiny_model_dir, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("SEREN_FEAST_TARGET", "redis")
    monkeypatch.setenv("SEREN_REDIS_URL", f"127.0.0.1:{_closed_port()}")
    args = _args(few_users, "127.0.0.1:1", exploration_dir, tiny_model_dir, tmp_path / "features")
    args[args.index("--target") + 1] = "redis"
    with pytest.raises(SystemExit) as exit_:
        main(["nearline", "run", "--once", *args])
    assert exit_.value.code == 3
    lines = [ln for ln in capsys.readouterr().err.strip().splitlines() if not ln.startswith("nearline: ")]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Redis" in lines[0] and "Fix:" in lines[0]
    assert WatermarkStore(nearline_dir(tmp_path / "features")).read() is None


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--data", "/no/such/dataset"], "dataset directory /no/such/dataset does not exist"),
        (["--exploration", "/no/such/exploration"], "no clusters at /no/such/exploration/clusters"),
        (["--every", "soon"], "--every 'soon' is not a positive duration"),
    ],
)
def test_cli_bad_input_is_one_line(
    few_users, exploration_dir, tiny_model_dir, tmp_path, capsys, extra: list[str], needle: str
) -> None:
    args = _args(few_users, "127.0.0.1:1", exploration_dir, tiny_model_dir, tmp_path / "features") + extra
    with pytest.raises(SystemExit) as exit_:
        main(["nearline", "run", *args])
    assert exit_.value.code == 2
    lines = [ln for ln in capsys.readouterr().err.strip().splitlines() if not ln.startswith("nearline: ")]
    assert len(lines) == 1 and needle in lines[0] and "Fix:" in lines[0]
    assert WatermarkStore(nearline_dir(tmp_path / "features")).read() is None


def test_pipeline_runs_locally(few_users, triton, exploration_dir, tiny_model_dir, tmp_path, monkeypatch) -> None:
    """`seren pipeline run nearline --local` with shards=2: plan -> ParallelFor over the shards ->
    Collected -> commit through kfp.local, defaults from the environment (Triton URL) and the
    published exploration run (which names the dataset)."""
    from feature_repo.store import get_online
    from seren.exploration.workflow import publish_outputs
    from seren.nearline import open_store

    pub = publish_outputs(
        tmp_path / "exploration",
        clusters_dir=exploration_dir / "clusters",
        table_dir=exploration_dir,
        dataset_dir=few_users,
        seqrec_dir=exploration_dir / "seqrec",
    )
    monkeypatch.setenv("SEREN_TRITON_URL", triton.http_url)
    feast_dir = tmp_path / "features"
    res = P.run_local(
        "nearline",
        {
            "exploration_dir": str(pub),
            "model": str(tiny_model_dir),
            "token_budget": 48,
            "k_main": 4,
            "k_explore": 3,
            "top_n": 3,
            "threshold": 0.0,
            "feast_data_dir": str(feast_dir),
            "shards": 2,
        },
        pipeline_root=tmp_path / "run",
    )
    tasks = {name.rsplit("/", 1)[-1]: t for name, t in res["tasks"].items()}
    shard_runs = [t["parameters"]["Output"] for name, t in res["tasks"].items() if "nearline-shard" in name]
    assert sorted(r["shard"] for r in shard_runs) == [0, 1]  # the fan-out ran both shards
    users = sorted(pd.read_parquet(few_users / "interactions.parquet")["user_id"].astype(str).unique())
    assert sum(r["users"] for r in shard_runs) == len(users)
    watermark = tasks["nearline-commit"]["parameters"]["Output"]  # the fan-in moved the watermark
    end = pd.to_datetime(pd.read_parquet(few_users / "interactions.parquet")["timestamp"], utc=True).max()
    assert pd.Timestamp(watermark) == end == WatermarkStore(nearline_dir(feast_dir)).watermark()
    rows = get_online(open_store("local", feast_dir), "user_candidates", users, max_age=pd.Timedelta(days=100000))
    assert (rows["status"] == "ok").all() and all(len(v) == 3 for v in rows["candidate_item_ids"])
    assert all(np.all(np.diff(v) <= 0) for v in rows["candidate_scores"])
    # the judgments went to the default monitoring dir of this SEREN_HOME
    from monitoring.judgments import default_current_dir, load_judgments

    judged = load_judgments(default_current_dir())
    assert set(judged["user_id"]) == set(users)
    # the fan-in's metrics: the share judged at the run's threshold (0: every scored candidate)
    commit = tasks["nearline-commit"]["artifacts"]["metrics"]["metadata"]
    assert commit["threshold"] == 0.0 and commit["judged_share"] == 1.0
    assert commit["items_scored"] == len(judged) and judged["judged_serendipitous"].eq(1).all()


def test_schedule_every_15m_mocked_kfp_cluster(fake_kfp, capsys) -> None:
    params = {"dataset_dir": "/mnt/seren/events", "triton_url": "triton.seren:8000", "state_uri": "gs://b/nearline"}
    res = P.schedule("nearline", fake_kfp.url, every="15m", params=params)
    assert res["interval_seconds"] == 900
    (job,) = fake_kfp.recurring_runs
    assert job["trigger"]["periodic_schedule"]["interval_second"] == 900
    assert job["max_concurrency"] == 1 and job["no_catchup"] is True
    assert job["runtime_config"]["parameters"] == params
    spec = yaml.safe_load(fake_kfp.versions[res["version_id"]]["spec"])
    assert spec["pipelineInfo"]["name"] == "seren-nearline"
    assert {"nearline-plan", "for-loop-1", "nearline-commit"} <= set(spec["root"]["dag"]["tasks"])
    main(["pipeline", "schedule", "nearline", "--host", fake_kfp.url, "--every", "15m", "--json"])
    assert json.loads(capsys.readouterr().out)["interval_seconds"] == 900 and len(fake_kfp.recurring_runs) == 2


def test_cli_every_survives_a_triton_outage_tick(few_users, exploration_dir, tiny_model_dir, tmp_path, capsys):
    """A tick that cannot reach Triton prints one error line and the loop goes on (watermark kept);
    the exit status reports the last tick's failure."""
    from serving.triton import free_port

    args = _args(few_users, f"127.0.0.1:{free_port()}", exploration_dir, tiny_model_dir, tmp_path / "features")
    with pytest.raises(SystemExit) as exit_:
        main(["nearline", "run", *args, "--retries", "0", "--every", "0.1", "--max-runs", "2"])
    assert exit_.value.code == 3
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 2 and all("unreachable" in ln and "watermark unchanged" in ln for ln in errors)
    assert WatermarkStore(nearline_dir(tmp_path / "features")).read() is None


def test_submit_with_64_shards_mocked_kfp_cluster(fake_kfp, capsys) -> None:
    """`seren pipeline submit nearline --param shards=64`: the run carries the typed shard count and
    the uploaded spec fans out over the plan's items and collects the shards' results."""
    main(["pipeline", "submit", "nearline", "--host", fake_kfp.url, "--param", "shards=64", "--json"])
    res = json.loads(capsys.readouterr().out)
    (run,) = fake_kfp.runs
    assert run["runtime_config"]["parameters"] == {"shards": 64}
    spec = yaml.safe_load(fake_kfp.versions[res["version_id"]]["spec"])
    loop = spec["root"]["dag"]["tasks"]["for-loop-1"]
    assert loop["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--nearline-plan-Output"
    shard = spec["components"]["comp-for-loop-1"]["dag"]["tasks"]["nearline-shard"]
    assert shard["retryPolicy"]["maxRetryCount"] == 2
    commit = spec["root"]["dag"]["tasks"]["nearline-commit"]
    assert commit["inputs"]["parameters"]["results"]["taskOutputParameter"]["producerTask"] == "for-loop-1"
