"""Nearline runs against the real tritonserver (tiny SerenGPT), a real local Feast store (SQLite
online + parquet offline) and real exploration outputs on the synthetic small dataset."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seren.errors import SerenError, ServiceError
from seren.nearline import NearlineConfig, WatermarkStore, nearline_dir, open_store, run_nearline

pytestmark = pytest.mark.integration

CAND_FIELDS = ["candidate_item_ids", "candidate_scores", "main_item_ids", "explore_item_ids", "cluster_pair"]


def make_cfg(data: Path, triton, exploration_dir: Path, tiny_model_dir: Path, feast_dir: Path, **kw) -> NearlineConfig:
    base = dict(
        dataset_dir=str(data),
        triton_url=triton.http_url if triton is not None else "127.0.0.1:1",
        exploration_dir=str(exploration_dir),
        model=str(tiny_model_dir),
        token_budget=48,
        k_main=6,
        k_explore=4,
        n_novel=2,
        top_n=5,
        threshold=0.0,
        batch_size=32,
        feast_data_dir=str(feast_dir),
        feast_target="local",
        judgments_dir=str(feast_dir.parent / "judgments"),
    )
    base.update(kw)
    return NearlineConfig(**base)


def online(feast_dir: Path, users: list[str]) -> dict[str, pd.DataFrame]:
    from feature_repo.store import get_online

    store = open_store("local", feast_dir)
    return {
        v: get_online(store, v, users, max_age=pd.Timedelta(days=100000)) for v in ("user_candidates", "user_profile")
    }


def frozen(state: dict[str, pd.DataFrame]) -> dict[str, list]:
    """Online state as plain values (scores rounded to what float32 storage keeps)."""
    out = {}
    for view, df in state.items():
        cols = [c for c in df.columns if c not in ("age_s",)]
        rows = []
        for rec in df[cols].to_dict("records"):
            rows.append(
                {
                    k: (
                        [round(float(x), 5) for x in v]
                        if k == "candidate_scores" and v is not None
                        else (list(v) if isinstance(v, list | np.ndarray) else v)
                    )
                    for k, v in rec.items()
                }
            )
        out[view] = rows
    return out


@pytest.fixture(scope="module")
def first_run(small_dataset, triton, exploration_dir, tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("nearline_first")
    cfg = make_cfg(small_dataset, triton, exploration_dir, tiny_model_dir, root / "features")
    res = run_nearline(cfg)
    return cfg, res, root


def test_first_run_refreshes_every_user_with_contract_rows(first_run, small_dataset, exploration_dir, tiny_model_dir):
    from seren.data import load_dataset
    from seren.exploration.clusters import Clusters
    from seren.exploration.seqrec import user_histories
    from seren.llm.scorer import SerenScorer
    from seren.profiles import build_profiles, item_text, load_tokenizer

    cfg, res, root = first_run
    ds = load_dataset(small_dataset)
    users = sorted(ds.interactions["user_id"].astype(str).unique())
    end = pd.to_datetime(ds.interactions["timestamp"], utc=True).max()
    assert res["watermark_before"] is None and pd.Timestamp(res["watermark_after"]) == end
    assert WatermarkStore(nearline_dir(root / "features")).watermark() == end
    assert res["users_changed"] == len(users)
    assert res["users_refreshed"] + res["users_skipped_no_history"] == len(users) and res["users_refreshed"] > 60
    assert res["pushed"] == {"user_profile": res["users_refreshed"], "user_candidates": res["users_refreshed"]}
    assert set(res["stage_seconds"]) == {"setup", "profiles", "candidates", "scoring", "feast_writes"}
    assert all(v > 0 for v in res["stage_seconds"].values())

    hist = user_histories(ds)
    refreshed = [u for u in users if hist.get(u)]
    state = online(root / "features", refreshed)
    cands = state["user_candidates"].set_index("user_id")
    assert (cands["status"] == "ok").all()
    assert (pd.to_datetime(cands["event_timestamp"], utc=True) == end).all()  # window end, not wall clock

    cl = Clusters.load(exploration_dir / "clusters")
    i2c = cl.item_to_cluster
    from seren.exploration.pair_table import PairLookup, load_pair_table

    lookup = PairLookup(load_pair_table(exploration_dir / "pair_table.parquet"))
    texts = item_text(ds.items).set_axis(ds.items["item_id"].astype(str).to_numpy())
    scorer = SerenScorer.from_pretrained(tiny_model_dir)
    profiles = build_profiles(ds, load_tokenizer(tiny_model_dir), token_budget=48, users=refreshed[:5]).set_index(
        "user_id"
    )
    pairs_seen = 0
    for u in refreshed[:5]:
        row = cands.loc[u]
        main, explore = list(row["main_item_ids"]), list(row["explore_item_ids"])
        assert len(main) == cfg.k_main and not set(main) & set(hist[u])  # history excluded
        if row["cluster_pair"]:
            c1, c2 = row["cluster_pair"].split("|")
            pairs_seen += 1
            novel = set(lookup(c1, c2, n=cfg.n_novel)["novel_clusters"])
            assert explore and all(i2c[i] in novel for i in explore)
            assert not set(explore) & set(main)  # exploration adds exposure beyond the main slate
        # the serendipity channel: candidates outside the user's engaged categories (issue 11)
        from seren.nearline.candidates import add_serendipity_source

        one = pd.DataFrame({"user_id": [u], "main_item_ids": [main], "explore_item_ids": [explore]})
        union = list(add_serendipity_source(one, hist, ds.items, ds.interactions)["serendipity_item_ids"][0])
        engaged_cats = set(ds.items.set_index("item_id").loc[hist[u], "category"])
        got = list(row["candidate_item_ids"])
        scores = np.asarray(row["candidate_scores"], dtype=float)
        assert got and set(got) <= set(union) and len(got) == min(cfg.top_n, len(union))
        assert not set(got) & set(main) and not set(ds.items.set_index("item_id").loc[got, "category"]) & engaged_cats
        assert np.all(np.diff(scores) <= 0)
        # the stored scores are SerenGPT's: Triton == the in-process scorer on the same prompts
        ref = scorer.score(profiles.loc[u, "profile_text"], texts.loc[got].tolist())
        np.testing.assert_allclose(scores, ref, atol=1e-5)
        # and they are the best of the union
        all_scores = scorer.score(profiles.loc[u, "profile_text"], texts.loc[union].tolist())
        assert scores[-1] >= np.sort(all_scores)[-len(got)] - 1e-5
    assert pairs_seen >= 3
    prof = state["user_profile"].set_index("user_id")
    assert prof.loc[refreshed[0], "profile_text"] == profiles.loc[refreshed[0], "profile_text"]

    j = pd.read_parquet(res["judgments"])
    assert len(j) == res["items_scored"] and set(j["user_id"]) == set(refreshed)
    assert {"score", "judged_serendipitous", "profile_tokens", "category_entropy", "candidate_popularity"} <= set(j)


def test_rerun_of_the_same_window_is_a_no_op(first_run):
    cfg, res, root = first_run
    users = sorted(pd.read_parquet(res["judgments"])["user_id"].unique())[:10]
    before = frozen(online(root / "features", users))
    again = run_nearline(cfg)
    assert again["users_changed"] == 0 and again["pushed"] == {"user_profile": 0, "user_candidates": 0}
    assert again["watermark_after"] == res["watermark_after"]
    assert frozen(online(root / "features", users)) == before


def _cli_args(cfg: NearlineConfig, feast_dir: Path, judgments: Path) -> list[str]:
    return [
        str(Path(sys.executable).parent / "seren"),
        "nearline",
        "run",
        "--once",
        "--data", cfg.dataset_dir,
        "--exploration", str(cfg.exploration_dir),
        "--url", cfg.triton_url,
        "--model", cfg.model,
        "--token-budget", str(cfg.token_budget),
        "--k-main", str(cfg.k_main),
        "--k-explore", str(cfg.k_explore),
        "--n-novel", str(cfg.n_novel),
        "--top-n", str(cfg.top_n),
        "--threshold", str(cfg.threshold),
        "--batch-size", str(cfg.batch_size),
        "--target", "local",
        "--features-dir", str(feast_dir),
        "--judgments", str(judgments),
    ]  # fmt: skip


def _scorer_inferences(triton) -> int:
    import tritonclient.http as httpclient

    c = httpclient.InferenceServerClient(triton.http_url)
    try:
        # per-pair rows on `scorer`, user rows on `packed_scorer` (nearline's default scoring)
        stats = [c.get_inference_statistics(m)["model_stats"][0] for m in ("scorer", "packed_scorer")]
        return sum(int(s["inference_count"]) for s in stats)
    finally:
        c.close()


def test_killed_run_loses_nothing(first_run, triton, tmp_path):
    """SIGKILL a CLI run while it is scoring on Triton: the watermark, the store and the judgments
    are untouched; the next run completes the window and leaves exactly the uninterrupted state."""
    cfg, res, root = first_run
    feast_dir, judgments = tmp_path / "features", tmp_path / "judgments"
    # throttle between Triton batches (the ops seam for sharing Triton), so the kill lands mid-scoring
    env = {**os.environ, "SEREN_NEARLINE_BATCH_DELAY_S": "0.5"}
    before_inf = _scorer_inferences(triton)
    proc = subprocess.Popen(
        _cli_args(cfg, feast_dir, judgments), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stderr], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while not any(ln.startswith("nearline: scoring") for ln in seen):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(seen)
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        while _scorer_inferences(triton) == before_inf:  # at least one batch scored by Triton
            assert proc.poll() is None and time.monotonic() < deadline, "".join(seen)
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.2)
    while not lines.empty():
        seen.append(lines.get())
    assert not any("feast_writes" in ln or ln.startswith("nearline: done") for ln in seen), seen
    scored = _scorer_inferences(triton) - before_inf
    assert 0 < scored < res["items_scored"], "the kill did not land mid-scoring"

    users = sorted(pd.read_parquet(res["judgments"])["user_id"].unique())
    assert WatermarkStore(nearline_dir(feast_dir)).read() is None
    assert (online(feast_dir, users)["user_candidates"]["status"] == "missing").all()
    assert not list(judgments.glob("*.parquet"))

    cfg2 = NearlineConfig(**{**cfg.__dict__, "feast_data_dir": str(feast_dir), "judgments_dir": str(judgments)})
    again = run_nearline(cfg2)
    assert again["watermark_after"] == res["watermark_after"] and again["users_refreshed"] == res["users_refreshed"]
    assert frozen(online(feast_dir, users)) == frozen(online(root / "features", users))
    # a second run of the (now finished) window adds nothing offline either
    assert run_nearline(cfg2)["users_changed"] == 0
    off = pd.read_parquet(feast_dir / "offline" / "user_candidates.parquet")
    assert len(off) == len(users) and off["user_id"].is_unique
    assert len(list(judgments.glob("*.parquet"))) == 1


def test_new_events_refresh_only_those_users(first_run, tmp_path):
    from seren.data import load_dataset, save_dataset

    cfg, res, root = first_run
    ds = load_dataset(cfg.dataset_dir)
    end = pd.Timestamp(res["watermark_after"])
    users = sorted(pd.read_parquet(res["judgments"])["user_id"].unique())
    movers, still = users[:2], users[2:6]
    before = frozen(online(root / "features", still))
    items = ds.items["item_id"].astype(str).tolist()
    new = pd.DataFrame(
        {
            "user_id": [movers[0], movers[0], movers[1]],
            "item_id": [items[0], items[1], items[2]],
            "event": ["click", "purchase", "like"],
            "rating": [np.nan, np.nan, np.nan],
            "timestamp": [end + pd.Timedelta(minutes=m) for m in (1, 2, 3)],
        }
    )
    ds.interactions = pd.concat([ds.interactions, new], ignore_index=True)
    data2 = tmp_path / "data2"
    save_dataset(ds, data2)
    cfg2 = NearlineConfig(**{**cfg.__dict__, "dataset_dir": str(data2)})
    out = run_nearline(cfg2)
    assert out["users_changed"] == 2 and out["users_refreshed"] == 2
    assert pd.Timestamp(out["watermark_after"]) == end + pd.Timedelta(minutes=3)
    moved = online(root / "features", movers)["user_candidates"]
    assert (pd.to_datetime(moved["event_timestamp"], utc=True) == end + pd.Timedelta(minutes=3)).all()
    assert frozen(online(root / "features", still)) == before


def test_user_without_history_is_skipped_and_counted(small_dataset, triton, exploration_dir, tiny_model_dir, tmp_path):
    from seren.data import load_dataset, save_dataset

    ds = load_dataset(small_dataset)
    t = pd.to_datetime(ds.interactions["timestamp"], utc=True).max()
    ghost = pd.DataFrame(
        {
            "user_id": ["ghost", "ghost"],
            "item_id": ds.items["item_id"].astype(str).tolist()[:2],
            "event": ["impression", "skip"],
            "rating": [np.nan, np.nan],
            "timestamp": [t + pd.Timedelta(seconds=1), t + pd.Timedelta(seconds=2)],
        }
    )
    keep = ds.interactions[ds.interactions["user_id"].isin(sorted(ds.interactions["user_id"].unique())[:3])]
    ds.interactions = pd.concat([keep, ghost], ignore_index=True)
    save_dataset(ds, tmp_path / "data")
    cfg = make_cfg(tmp_path / "data", triton, exploration_dir, tiny_model_dir, tmp_path / "features")
    res = run_nearline(cfg)
    assert res["users_changed"] == 4 and res["users_skipped_no_history"] == 1 and res["users_refreshed"] == 3
    state = online(tmp_path / "features", ["ghost"])
    assert state["user_candidates"]["status"].tolist() == ["missing"]
    assert pd.Timestamp(res["watermark_after"]) == t + pd.Timedelta(seconds=2)  # its events are processed


def test_triton_down_fails_with_one_line_and_keeps_the_watermark(
    small_dataset, exploration_dir, tiny_model_dir, tmp_path
):
    from serving.triton import free_port

    cfg = make_cfg(small_dataset, None, exploration_dir, tiny_model_dir, tmp_path / "features", retries=2)
    cfg.triton_url = f"127.0.0.1:{free_port()}"
    with pytest.raises(ServiceError) as err:
        run_nearline(cfg)
    line = err.value.line()
    assert "\n" not in line and "unreachable" in line and "3 attempts" in line and cfg.triton_url in line
    assert WatermarkStore(nearline_dir(tmp_path / "features")).read() is None
    assert online(tmp_path / "features", ["u0000"])["user_candidates"]["status"].tolist() == ["missing"]


def test_watermark_file_is_json_with_the_window(first_run):
    _, res, root = first_run
    rec = json.loads((nearline_dir(root / "features") / "watermark.json").read_text())
    assert rec["watermark"] == res["watermark_after"] or pd.Timestamp(rec["watermark"]) >= pd.Timestamp(
        res["watermark_after"]
    )
    assert "updated" in rec


def test_initial_lookback_limits_the_first_run(small_dataset, triton, exploration_dir, tiny_model_dir, tmp_path):
    from seren.data import load_dataset

    ds = load_dataset(small_dataset)
    ts = pd.to_datetime(ds.interactions["timestamp"], utc=True)
    recent = set(ds.interactions.loc[ts > ts.max() - pd.Timedelta("2d"), "user_id"].astype(str))
    assert 0 < len(recent) < ds.interactions["user_id"].nunique()
    cfg = make_cfg(small_dataset, triton, exploration_dir, tiny_model_dir, tmp_path / "f", initial_lookback="2d")
    res = run_nearline(cfg)
    assert res["users_changed"] == len(recent) and pd.Timestamp(res["window_start"]) == ts.max() - pd.Timedelta("2d")
    assert pd.Timestamp(res["watermark_after"]) == ts.max()
    assert run_nearline(cfg)["users_changed"] == 0  # the lookback applies only before the first watermark
    with pytest.raises(SerenError, match="not a positive duration"):
        make_cfg(
            small_dataset, triton, exploration_dir, tiny_model_dir, tmp_path / "g", initial_lookback="soon"
        ).validate()
