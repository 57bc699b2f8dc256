"""Feast `test_workflow`-style integration tests on real stores: apply, historical (point in
time), materialize, online, push (online and offline), freshness, teardown -- once on SQLite and
once on a redis-server started for the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from seren.data import load_dataset
from seren.data.features import build_feature_tables
from seren.errors import ConfigError, DataError, ServiceError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ds(small_dataset: Path):
    return load_dataset(small_dataset)


@pytest.fixture(params=["local", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from feature_repo import store as fs

    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        monkeypatch.setenv("SEREN_REDIS_URL", server.url)
    st = fs.get_store(request.param, tmp_path / "features")
    st.seren_server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    yield st
    if st.seren_server is None or st.seren_server.proc.poll() is None:  # a test may stop Redis
        fs.teardown(st)


def test_workflow(store, ds, tmp_path: Path) -> None:
    from feature_repo import store as fs

    data_dir = tmp_path / "features"
    ts = ds.interactions["timestamp"]
    t_mid, t_end = ts.quantile(0.5), ts.max()
    paths = fs.write_offline(ds, data_dir, as_of=[t_mid, t_end])
    assert set(paths) == {"user_stats", "item_features", "user_profile", "user_candidates", "novel_interests"}
    assert all(p.is_relative_to(data_dir) for p in paths.values())  # nothing written into the repo
    assert (data_dir / "feature_store.yaml").exists()

    applied = fs.apply(store)
    assert {"entity:user", "entity:item", "entity:cluster_pair", "feature_view:user_stats"} <= set(applied)
    assert fs.apply(store) == applied  # idempotent

    # historical: point-in-time correct against both snapshots
    mid = build_feature_tables(ds, t_mid)["user_stats"].set_index("user_id")
    end = build_feature_tables(ds, t_end)["user_stats"].set_index("user_id")
    uid = next(u for u in mid.index if mid.loc[u, "n_events"] != end.loc[u, "n_events"])
    entity_df = pd.DataFrame(
        {
            "user_id": [uid, uid, uid],
            "event_timestamp": [
                t_mid - pd.Timedelta(hours=1),
                t_mid + pd.Timedelta(hours=1),
                t_end + pd.Timedelta(days=1),
            ],
        }
    )
    hist = fs.get_historical(store, entity_df, ["user_stats"]).sort_values("event_timestamp")
    assert pd.isna(hist["n_events"].iloc[0])  # before the first snapshot: nothing known yet
    assert hist["n_events"].iloc[1:].tolist() == [mid.loc[uid, "n_events"], end.loc[uid, "n_events"]]

    # materialize + online: the latest snapshot per entity
    counts = fs.materialize(store)
    assert counts["user_stats"] == len(end) and counts["item_features"] == len(ds.items)
    assert counts["user_candidates"] == 0
    users = list(end.index[:3])
    online = fs.get_online(store, "user_stats", [*users, "no-such-user"])
    assert online["user_id"].tolist() == [*users, "no-such-user"]
    assert online["status"].tolist() == ["ok", "ok", "ok", "missing"]
    assert online["n_events"].iloc[:3].tolist() == end.loc[users, "n_events"].tolist()
    assert online["top_categories"].iloc[:3].tolist() == end.loc[users, "top_categories"].tolist()
    items = fs.get_online(store, "item_features", list(ds.items["item_id"][:2]))
    assert items["title"].tolist() == ds.items["title"][:2].tolist()
    # batch views have no ttl; an explicit max_age marks the (2024) snapshot stale
    assert (fs.get_online(store, "user_stats", users, max_age=timedelta(days=1))["status"] == "stale").all()

    # push: online + offline, read back from both
    cand = pd.DataFrame(
        {
            "user_id": users[:2],
            "candidate_item_ids": [["i00001", "i00002"], ["i00003"]],
            "candidate_scores": [[0.9, 0.4], [0.7]],
            "main_item_ids": [["i00010"], []],
            "explore_item_ids": [["i00020"], []],
            "cluster_pair": ["c1|c2", ""],
        }
    )
    assert fs.push(store, "user_candidates_push", cand) == 2
    got = fs.get_online(store, "user_candidates", users)
    assert got["status"].tolist() == ["ok", "ok", "missing"]
    assert list(got["candidate_item_ids"].iloc[0]) == ["i00001", "i00002"]
    assert list(got["candidate_scores"].iloc[0]) == pytest.approx([0.9, 0.4])
    assert list(got["main_item_ids"].iloc[1]) == []
    assert list(got["explore_item_ids"].iloc[0]) == ["i00020"] and got["cluster_pair"].tolist()[:2] == ["c1|c2", ""]
    offline = pq.read_table(paths["user_candidates"]).to_pandas()
    assert sorted(offline["user_id"]) == sorted(users[:2])
    hist = fs.get_historical(
        store,
        pd.DataFrame({"user_id": [users[0]], "event_timestamp": [datetime.now(UTC) + timedelta(minutes=1)]}),
        ["user_candidates"],
    )
    assert list(hist["candidate_item_ids"].iloc[0]) == ["i00001", "i00002"]

    # freshness is enforced by the reader: user_candidates has a 2-day ttl
    later = fs.get_online(store, "user_candidates", users[:1], now=datetime.now(UTC) + timedelta(days=3))
    assert later["status"].tolist() == ["stale"] and list(later["candidate_item_ids"].iloc[0]) == ["i00001", "i00002"]

    # a pushed profile with an old event time is stale right away; online-only leaves offline alone
    old = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=5)
    prof = pd.DataFrame(
        {"user_id": [users[0]], "profile_text": ["likes jazz"], "profile_tokens": [3], "event_timestamp": [old]}
    )
    fs.push(store, "user_profile_push", prof, to="online")
    p = fs.get_online(store, "user_profile", users[:1])
    assert p[["profile_text", "status"]].values.tolist() == [["likes jazz", "stale"]]
    assert pq.read_table(paths["user_profile"]).num_rows == 0

    # re-pushing the same rows (a retried nearline run) keeps one offline copy
    same_ts = cand.assign(event_timestamp=pd.Timestamp("2030-01-01", tz="UTC"))
    fs.push(store, "user_candidates_push", same_ts)
    fs.push(store, "user_candidates_push", same_ts)
    assert pq.read_table(paths["user_candidates"]).num_rows == 4

    # novel-interest table keyed by cluster pair
    fs.push(
        store,
        "novel_interest_push",
        pd.DataFrame({"cluster_pair": ["c1|c2"], "novel_clusters": [["c7", "c3"]], "novel_scores": [[0.6, 0.3]]}),
    )
    nov = fs.get_online(store, "novel_interests", ["c1|c2", "c2|c1"])
    assert nov["status"].tolist() == ["ok", "missing"] and list(nov["novel_clusters"].iloc[0]) == ["c7", "c3"]


def test_bad_inputs(store, ds, tmp_path: Path) -> None:
    from feature_repo import store as fs

    with pytest.raises(ConfigError, match="not registered"):
        fs.materialize(store)
    fs.write_offline(ds, tmp_path / "features")
    fs.apply(store)
    with pytest.raises(ConfigError, match="unknown feature view 'nope'"):
        fs.get_online(store, "nope", ["u1"])
    with pytest.raises(ConfigError, match="unknown push source"):
        fs.push(store, "nope_push", pd.DataFrame({"user_id": ["u"]}))
    with pytest.raises(DataError, match="missing column.*profile_tokens"):
        fs.push(store, "user_profile_push", pd.DataFrame({"user_id": ["u"], "profile_text": ["x"]}))
    with pytest.raises(DataError, match="do not match the view schema"):
        fs.push(
            store,
            "user_profile_push",
            pd.DataFrame({"user_id": ["u"], "profile_text": ["x"], "profile_tokens": ["many"]}),
        )
    if store.seren_server is not None:  # Redis goes away mid-session: one-line ServiceError
        store.seren_server.stop()
        with pytest.raises(ServiceError, match=f"127.0.0.1:{store.seren_server.port}"):
            fs.get_online(store, "user_stats", ["u00001"])
