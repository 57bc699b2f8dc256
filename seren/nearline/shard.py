"""Nearline past one machine: the changed users of a window split into S shards.

A nearline tick becomes plan -> S shard tasks -> commit: the nearline pipeline (the one definition
of that DAG; `seren nearline run --shards S` runs it with kfp.local) runs the shards as a Kubeflow
`dsl.ParallelFor` and the commit after a `dsl.Collected` fan-in:

- `plan_window` reads the watermark and the event log once and fixes the window
  (watermark_before, window_end]: every shard works on exactly that window, so events arriving
  while the shards run belong to the next tick and every shard sees the same data;
- `run_shard` refreshes the users whose stable hash (`shard_of`: sha1 of the user id, never
  Python's per-process `hash`) falls in its shard: profiles -> candidates -> Triton -> Feast push
  -> judgments (`seren.nearline.run.process_users`). Rows carry the window end and the judgments
  part is named after the window and the shard, so a retried shard writes the same rows;
- `commit_window` moves the watermark to the window end only when every shard reported success for
  this very window, and only if nobody moved it meanwhile. A failed shard (after its retries)
  leaves the watermark where it was; the next tick redoes the whole window idempotently.

Each user's rows depend only on that user's events up to the window end, so S shards give the same
online rows and judgments as one (tests/nearline/test_shards.py).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from seren.errors import ConfigError, DataError
from seren.nearline.config import NearlineConfig
from seren.nearline.run import STAGES, StageCallback, changed_users, open_store, process_users
from seren.nearline.sources import Exploration
from seren.nearline.state import WatermarkStore, nearline_dir
from seren.registry.store import ConflictError

PUSH_LOCK = ".push.lock"
MAX_SHARDS = 4096


def shard_of(user_id: str, n_shards: int) -> int:
    """The shard of a user: stable across processes, machines and Python versions (sha1)."""
    digest = hashlib.sha1(str(user_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n_shards


def shard_users(users: Iterable[str], shard: int, n_shards: int) -> list[str]:
    """The users of one shard, in the input order."""
    check_shards(n_shards, shard)
    return [u for u in users if shard_of(u, n_shards) == shard]


def check_shards(n_shards: int, shard: int | None = None) -> None:
    if not 1 <= int(n_shards) <= MAX_SHARDS:
        raise ConfigError(f"shards must be in 1..{MAX_SHARDS} (got {n_shards})", "pass e.g. --shards 4")
    if shard is not None and not 0 <= int(shard) < int(n_shards):
        raise ConfigError(f"shard {shard} is not in 0..{int(n_shards) - 1}", f"pass a shard index below {n_shards}")


def _ts(value: Any) -> pd.Timestamp | None:
    return None if value in (None, "") else pd.Timestamp(value)


def _iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _state(cfg: NearlineConfig, store: Any) -> tuple[WatermarkStore, Path]:
    from feature_repo.store import data_dir_of

    local = nearline_dir(data_dir_of(store))
    return WatermarkStore(cfg.state_uri or local), local


def _window_events(cfg: NearlineConfig, window: dict[str, Any]) -> tuple[Any, list[str]]:
    """The dataset cut at the window end and the window's changed users (same for every shard)."""
    from seren.data import load_dataset

    ds = load_dataset(cfg.dataset_dir)
    end = _ts(window.get("window_end"))
    if end is None:
        return ds, []
    ts = pd.to_datetime(ds.interactions["timestamp"], utc=True)
    ds.interactions = ds.interactions[ts <= end].reset_index(drop=True)
    users, _ = changed_users(ds.interactions, _ts(window.get("window_start")))
    return ds, users


def plan_window(cfg: NearlineConfig, n_shards: int = 1, store: Any | None = None) -> dict[str, Any]:
    """Fix the window every shard of this tick processes: (watermark or lookback start, newest event]."""
    check_shards(n_shards)
    cfg.resolve()
    store = store if store is not None else open_store(cfg.feast_target, cfg.feast_data_dir)
    state, _ = _state(cfg, store)
    from seren.data import load_dataset

    before = state.watermark()
    ds = load_dataset(cfg.dataset_dir)
    start = before
    if before is None and cfg.lookback() is not None and not ds.interactions.empty:
        start = pd.to_datetime(ds.interactions["timestamp"], utc=True).max() - cfg.lookback()
    users, end = changed_users(ds.interactions, start)
    counts = [0] * n_shards
    for u in users:
        counts[shard_of(u, n_shards)] += 1
    return {  # "" not None: the plan travels as a KFP parameter
        "watermark_before": _iso(before) or "",
        "window_start": _iso(start) or "",
        "window_end": _iso(end) or "",
        "users_changed": len(users),
        "shards": int(n_shards),
        "users_per_shard": counts,
        "state": state.uri,
    }


def shard_items(window: dict[str, Any]) -> list[dict[str, Any]]:
    """One ParallelFor item per shard: the window plus the shard index."""
    return [{**window, "shard": i} for i in range(int(window["shards"]))]


def _check_unmoved(state: WatermarkStore, window: dict[str, Any], what: str) -> None:
    now = state.watermark()
    if (_iso(now) or "") != (window.get("watermark_before") or ""):
        raise ConflictError(
            f"nearline watermark moved to {_iso(now)} since this window was planned "
            f"(planned from {window.get('watermark_before')}); {what} refused",
            "another run committed meanwhile: let the next scheduled run plan a fresh window",
        )


def run_shard(
    cfg: NearlineConfig,
    window: dict[str, Any],
    shard: int,
    store: Any | None = None,
    on_stage: StageCallback | None = None,
    progress: Callable[[Iterable[Any], int, str], Iterable[Any]] | None = None,
) -> dict[str, Any]:
    """Process one shard of a planned window; never moves the watermark. Safe to retry."""
    t0 = time.perf_counter()
    n_shards = int(window.get("shards", 0))
    check_shards(n_shards, shard)
    cfg.resolve()
    cfg.batch_delay()
    store = store if store is not None else open_store(cfg.feast_target, cfg.feast_data_dir)
    state, local = _state(cfg, store)
    stage_s = {s: 0.0 for s in STAGES}
    t_setup = time.perf_counter()
    ex = Exploration.load(cfg)
    stage_s["setup"] = round(time.perf_counter() - t_setup, 4)
    from seren.registry.store import file_lock

    with file_lock(local / f".shard-{shard}-of-{n_shards}.lock", blocking=False):  # the same shard twice at once
        _check_unmoved(state, window, f"shard {shard}")
        ds, users = _window_events(cfg, window)
        if len(users) != int(window.get("users_changed", len(users))):
            raise DataError(
                f"the event log changed inside the planned window ({len(users)} changed users, "
                f"{window.get('users_changed')} planned)",
                "events must be appended with newer timestamps; re-plan the window",
            )
        mine = shard_users(users, shard, n_shards)
        out: dict[str, Any] = {
            "shard": int(shard),
            "shards": n_shards,
            "watermark_before": window.get("watermark_before"),
            "window_end": window.get("window_end"),
            "users": len(mine),
            "users_refreshed": 0,
            "users_skipped_no_history": 0,
            "items_scored": 0,
            "items_judged": 0,
            "candidates_kept": 0,
            "pushed": {"user_profile": 0, "user_candidates": 0},
            "judgments": "",
            "sources": cfg.sources,
        }
        if mine:
            done = process_users(
                cfg,
                ds,
                ex,
                mine,
                pd.Timestamp(window["window_end"]),
                _ts(window.get("window_start")),
                store,
                stage_s=stage_s,
                on_stage=on_stage,
                progress=progress,
                judgments_part=f"-shard{shard:04d}of{n_shards:04d}",
                push_lock=local / PUSH_LOCK,
            )
            out.update(done)
            out["judgments"] = out["judgments"] or ""
    seconds = time.perf_counter() - t0
    out.update(
        stage_seconds=stage_s,
        seconds=round(seconds, 3),
        users_per_min=round(60.0 * out["users_refreshed"] / seconds, 3) if seconds > 0 else 0.0,
    )
    return out


def commit_window(
    cfg: NearlineConfig, window: dict[str, Any], results: Sequence[dict[str, Any]], store: Any | None = None
) -> dict[str, Any]:
    """Advance the watermark to the window end once every shard of this window succeeded."""
    n_shards = int(window.get("shards", 0))
    check_shards(n_shards)
    got = sorted(int(r.get("shard", -1)) for r in results)
    if got != list(range(n_shards)):
        raise DataError(
            f"commit needs one result per shard 0..{n_shards - 1} (got {got})",
            "re-run the window: the watermark did not move",
        )
    other = [r["shard"] for r in results if r.get("window_end") != window.get("window_end")]
    if other or any(r.get("watermark_before") != window.get("watermark_before") for r in results):
        raise DataError(f"shard(s) {other or 'some'} processed another window", "re-run the window")
    cfg.resolve()
    store = store if store is not None else open_store(cfg.feast_target, cfg.feast_data_dir)
    state, local = _state(cfg, store)
    total = {
        k: int(sum(int(r.get(k, 0)) for r in results))
        for k in (
            "users",
            "users_refreshed",
            "users_skipped_no_history",
            "items_scored",
            "items_judged",
            "candidates_kept",
        )
    }
    if total["users"] != int(window.get("users_changed", 0)):
        raise DataError(
            f"the shards processed {total['users']} users, the window has {window.get('users_changed')}",
            "re-run the window with the same number of shards",
        )
    from seren.registry.store import file_lock

    summary: dict[str, Any] = {
        **{k: window.get(k) or None for k in ("watermark_before", "window_start", "window_end")},
        "users_changed": int(window.get("users_changed", 0)),
        "shards": n_shards,
        "watermark_after": window.get("watermark_before") or None,
        "state": state.uri,
        **{k: v for k, v in total.items() if k != "users"},
        "pushed": {
            v: int(sum(int(r.get("pushed", {}).get(v, 0)) for r in results))
            for v in ("user_profile", "user_candidates")
        },
        "sources": results[0].get("sources", {}) if results else cfg.sources,
        "threshold": next((r["threshold"] for r in results if r.get("threshold") is not None), None),
        "judgments": [r["judgments"] for r in sorted(results, key=lambda r: r["shard"]) if r.get("judgments")],
        "shard_seconds": [r.get("seconds") for r in sorted(results, key=lambda r: r["shard"])],
        "stage_seconds": {
            s: round(sum(float(r.get("stage_seconds", {}).get(s, 0.0)) for r in results), 4) for s in STAGES
        },  # summed over shards (task time, not wall clock)
    }
    with file_lock(local / ".commit.lock", blocking=False):
        _check_unmoved(state, window, "commit")
        if window.get("window_end") and int(window.get("users_changed", 0)) > 0:
            rec = state.write(
                window["window_end"],
                users_refreshed=total["users_refreshed"],
                users_skipped_no_history=total["users_skipped_no_history"],
                previous=window.get("watermark_before"),
                shards=n_shards,
            )
            summary["watermark_after"] = rec["watermark"]
    return summary


def config_from_params(**params: Any) -> NearlineConfig:
    """A NearlineConfig from pipeline parameters ("" / 0 mean the documented default)."""
    return NearlineConfig.from_params(params)
