"""Sharded nearline (plan -> S shards -> commit) against the real tritonserver (tiny SerenGPT) and a
real local Feast store: S=4 leaves exactly the online rows and judgments of S=1; a shard failing
mid-window leaves the watermark where it was and the re-run completes the window without duplicate
rows. The library functions here are what the pipeline's components call (the kfp.local run of the
sharded pipeline is test_cli_pipeline.py::test_pipeline_runs_locally)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from seren.errors import DataError, ServiceError
from seren.nearline import WatermarkStore, nearline_dir, open_store
from seren.nearline.shard import commit_window, plan_window, run_shard, shard_of, shard_users
from seren.registry.store import ConflictError
from tests.nearline.test_nearline import frozen, make_cfg, online

pytestmark = pytest.mark.integration


def run_sharded(cfg, n_shards: int, store=None) -> dict:
    """plan -> every shard -> commit in this process (the stages one at a time, as the pipeline runs them)."""
    store = store if store is not None else open_store(cfg.feast_target, cfg.feast_data_dir)
    window = plan_window(cfg, n_shards, store=store)
    results = [run_shard(cfg, window, s, store=store) for s in range(n_shards)]
    return commit_window(cfg, window, results, store=store)


def _judgments(d: Path) -> pd.DataFrame:
    parts = sorted(d.glob("*.parquet"))
    df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    df["score"] = df["score"].round(5)
    return df.sort_values(["user_id", "item_id"]).reset_index(drop=True)


def test_shard_of_is_a_stable_sha1_partition() -> None:
    # sha1, not Python's per-process hash(): the same user lands in the same shard on every worker
    assert shard_of("u42", 64) == int.from_bytes(hashlib.sha1(b"u42").digest()[:8], "big") % 64 == 36
    users = [f"u{i}" for i in range(200)]
    parts = [shard_users(users, s, 4) for s in range(4)]
    assert sorted(u for p in parts for u in p) == sorted(users) and all(parts)
    assert shard_users(users, 0, 1) == users


@pytest.fixture(scope="module")
def serial_and_sharded(small_dataset, triton, exploration_dir, tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("nearline_shards")
    out = {}
    for s in (1, 4):
        cfg = make_cfg(small_dataset, triton, exploration_dir, tiny_model_dir, root / f"s{s}" / "features")
        out[s] = (cfg, run_sharded(cfg, s), root / f"s{s}")
    return out


def test_four_shards_equal_one_row_for_row(serial_and_sharded) -> None:
    (_, res1, root1), (cfg4, res4, root4) = serial_and_sharded[1], serial_and_sharded[4]
    assert res1["shards"] == 1 and res4["shards"] == 4 and len(res4["judgments"]) == 4
    assert res1["watermark_after"] == res4["watermark_after"] == res1["window_end"]
    assert WatermarkStore(nearline_dir(root4 / "features")).watermark() == pd.Timestamp(res1["window_end"])
    for key in ("users_changed", "users_refreshed", "users_skipped_no_history", "items_scored", "pushed"):
        assert res1[key] == res4[key], key
    assert res1["users_refreshed"] > 60
    users = sorted(_judgments(root1 / "judgments")["user_id"].unique())
    assert len(users) == res1["users_refreshed"]
    one, four = frozen(online(root1 / "features", users)), frozen(online(root4 / "features", users))
    assert all(r["status"] == "ok" for r in one["user_candidates"])
    assert one == four
    pd.testing.assert_frame_equal(_judgments(root1 / "judgments"), _judgments(root4 / "judgments"))
    # the next tick: nothing changed, nothing pushed, the watermark stays
    again = run_sharded(cfg4, 4)
    assert again["users_changed"] == 0 and again["watermark_after"] == res4["watermark_after"]


def test_failed_shard_keeps_the_watermark_and_the_rerun_completes_without_duplicates(
    serial_and_sharded, small_dataset, triton, exploration_dir, tiny_model_dir, monkeypatch, tmp_path
) -> None:
    import feature_repo.store as fs

    cfg1, res1, root1 = serial_and_sharded[1]
    feast_dir = tmp_path / "features"
    cfg = make_cfg(small_dataset, triton, exploration_dir, tiny_model_dir, feast_dir)
    real_push, calls = fs.push, []

    def flaky_push(store, source, df, to="online_and_offline"):
        calls.append(source)
        if len(calls) == 6:  # shard 2: its profiles went out, then the candidates push dies
            raise ServiceError("online store unreachable (injected)", "retry")
        return real_push(store, source, df, to=to)

    monkeypatch.setattr(fs, "push", flaky_push)
    with pytest.raises(ServiceError, match="injected"):
        run_sharded(cfg, 4)
    assert calls[-2:] == ["user_profile_push", "user_candidates_push"]
    assert WatermarkStore(nearline_dir(feast_dir)).read() is None  # shards 0-1 pushed, the window is not done
    monkeypatch.setattr(fs, "push", real_push)

    again = run_sharded(cfg, 4)
    assert again["watermark_after"] == res1["watermark_after"] and again["users_refreshed"] == res1["users_refreshed"]
    users = sorted(_judgments(root1 / "judgments")["user_id"].unique())
    assert frozen(online(feast_dir, users)) == frozen(online(root1 / "features", users))
    for view in ("user_candidates", "user_profile"):
        off = pd.read_parquet(feast_dir / "offline" / f"{view}.parquet")
        assert len(off) == len(users) and off["user_id"].is_unique, view  # retried shards wrote the same rows
    assert len(list((feast_dir.parent / "judgments").glob("*.parquet"))) == 4
    pd.testing.assert_frame_equal(_judgments(feast_dir.parent / "judgments"), _judgments(root1 / "judgments"))


def test_commit_needs_every_shard_of_the_window_and_an_unmoved_watermark(
    small_dataset, exploration_dir, tiny_model_dir, tmp_path
) -> None:
    cfg = make_cfg(small_dataset, None, exploration_dir, tiny_model_dir, tmp_path / "features")
    store = open_store("local", tmp_path / "features")
    window = plan_window(cfg, 3, store=store)
    assert sum(window["users_per_shard"]) == window["users_changed"] > 0 and window["watermark_before"] == ""
    ok = [
        {"shard": i, "users": n, "window_end": window["window_end"], "watermark_before": ""}
        for i, n in enumerate(window["users_per_shard"])
    ]
    with pytest.raises(DataError, match="one result per shard"):
        commit_window(cfg, window, ok[:2], store=store)
    with pytest.raises(DataError, match="another window"):
        commit_window(cfg, window, [*ok[:2], {**ok[2], "window_end": "2001-01-01T00:00:00+00:00"}], store=store)
    state = WatermarkStore(nearline_dir(tmp_path / "features"))
    assert state.read() is None
    state.write("2001-01-01T00:00:00+00:00")  # another run committed meanwhile
    with pytest.raises(ConflictError, match="moved"):
        commit_window(cfg, window, ok, store=store)
    assert state.watermark() == pd.Timestamp("2001-01-01T00:00:00+00:00")


def test_cli_runs_the_shards_and_commits(few_users, triton, exploration_dir, tiny_model_dir, tmp_path, capsys) -> None:
    import json

    from seren.cli import main

    feast_dir = tmp_path / "features"
    args = [
        "--data", str(few_users), "--url", triton.http_url, "--exploration", str(exploration_dir),
        "--model", str(tiny_model_dir), "--token-budget", "48", "--k-main", "4", "--k-explore", "3",
        "--top-n", "3", "--threshold", "0", "--target", "local", "--features-dir", str(feast_dir),
        "--judgments", str(tmp_path / "judgments"),
    ]  # fmt: skip
    main(["nearline", "run", *args, "--shards", "3", "--json"])
    res = json.loads(capsys.readouterr().out)
    end = pd.to_datetime(pd.read_parquet(few_users / "interactions.parquet")["timestamp"], utc=True).max()
    assert res["shards"] == 3 and pd.Timestamp(res["watermark_after"]) == end
    assert WatermarkStore(nearline_dir(feast_dir)).read()["shards"] == 3
    assert res["users_refreshed"] == 4 and len(list((tmp_path / "judgments").glob("*.parquet"))) == len(
        res["judgments"]
    )
