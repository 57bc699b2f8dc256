"""The production-shaped online store: Feast's Redis target on a real redis-server. A push that
fails because Redis went away fails the run with one line and leaves the watermark where it was;
the next run, with Redis back, completes the window."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seren.errors import ServiceError
from seren.nearline import NearlineConfig, WatermarkStore, nearline_dir, open_store, run_nearline

from .conftest import RedisServer

pytestmark = pytest.mark.integration


def _restart_on(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import time

    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    for _ in range(100):
        try:
            if client.ping():
                break
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    client.close()
    return proc


def test_redis_push_failure_keeps_the_watermark(
    few_users: Path, triton, exploration_dir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    from feature_repo.store import get_online
    from seren.data import load_dataset, save_dataset

    server = RedisServer()
    monkeypatch.setenv("SEREN_REDIS_URL", server.url)
    feast = tmp_path / "features"
    cfg = NearlineConfig(
        dataset_dir=str(few_users),
        triton_url=triton.http_url,
        exploration_dir=str(exploration_dir),
        model=str(tiny_model_dir),
        token_budget=48,
        k_main=4,
        k_explore=3,
        top_n=3,
        threshold=0.0,
        feast_target="redis",
        feast_data_dir=str(feast),
        judgments_dir="none",
    )
    restarted = None
    try:
        store = open_store("redis", feast)
        first = run_nearline(cfg, store=store)
        users = sorted(pd.read_parquet(few_users / "interactions.parquet")["user_id"].astype(str).unique())
        rows = get_online(store, "user_candidates", users, max_age=pd.Timedelta(days=100000))
        assert first["users_refreshed"] == 4 and (rows["status"] == "ok").all()

        # one new event, then Redis goes away before the run pushes
        ds = load_dataset(few_users)
        end = pd.Timestamp(first["watermark_after"])
        new = pd.DataFrame(
            {
                "user_id": [users[0]],
                "item_id": [str(ds.items["item_id"].iloc[0])],
                "event": ["purchase"],
                "rating": [np.nan],
                "timestamp": [end + pd.Timedelta(minutes=5)],
            }
        )
        ds.interactions = pd.concat([ds.interactions, new], ignore_index=True)
        save_dataset(ds, tmp_path / "data2")
        cfg.dataset_dir = str(tmp_path / "data2")
        server.stop()
        with pytest.raises(ServiceError) as err:
            run_nearline(cfg, store=store)
        assert "Redis" in err.value.line() and "\n" not in err.value.line()
        assert WatermarkStore(nearline_dir(feast)).watermark() == end

        restarted = _restart_on(server.port)  # an empty Redis at the same address
        again = run_nearline(cfg, store=store)
        assert again["users_changed"] == 1 and pd.Timestamp(again["watermark_after"]) == end + pd.Timedelta(minutes=5)
        row = get_online(store, "user_candidates", [users[0]], max_age=pd.Timedelta(days=100000)).iloc[0]
        assert row["status"] == "ok" and pd.Timestamp(row["event_timestamp"]) == end + pd.Timedelta(minutes=5)
    finally:
        server.stop()
        if restarted is not None:
            restarted.terminate()
            restarted.wait(timeout=10)
