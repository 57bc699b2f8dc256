"""The window's writes: profiles and candidates to Feast (online + offline), stamped with the
window end so a re-run writes the same rows, and the scored pairs as monitoring judgments in a part
named after the window (a re-run replaces it)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pandas as pd

from seren.nearline.candidates import serendipity_channel
from seren.nearline.config import NearlineConfig
from seren.nearline.scoring import select_top

CANDIDATE_COLUMNS = [
    "user_id",
    "candidate_item_ids",
    "candidate_scores",
    "main_item_ids",
    "explore_item_ids",
    "cluster_pair",
    "event_timestamp",
]


def open_store(target: str | None = None, data_dir: str | os.PathLike[str] | None = None) -> Any:
    """The Feast store with the nearline views registered (applied on first use)."""
    from feature_repo.store import apply, get_store

    store = get_store(target or None, Path(data_dir) if data_dir else None)
    try:
        store.get_feature_view("user_candidates")
        store.get_feature_view("user_profile")
    except Exception:
        apply(store)
    return store


def push_window(
    store: Any,
    cands: pd.DataFrame,
    pairs: pd.DataFrame,
    profiles: pd.DataFrame,
    window_end: pd.Timestamp,
    top_n: int,
    threshold: float,
    push_lock: Path | None = None,
) -> tuple[dict[str, int], pd.DataFrame]:
    """Top-N serendipity candidates per user joined to the slates, then two Feast pushes (profiles,
    candidates; `seren.nearline.unit` reads them as a pair). Returns the push counts and the rows."""
    from feature_repo.store import push

    top = (
        select_top(serendipity_channel(pairs, cands), top_n, threshold)
        if not pairs.empty
        else pd.DataFrame(columns=["candidate_item_ids", "candidate_scores"], index=pd.Index([], name="user_id"))
    )
    rows = cands.set_index("user_id").join(top, how="left")
    rows["candidate_item_ids"] = [v if isinstance(v, list) else [] for v in rows["candidate_item_ids"]]
    rows["candidate_scores"] = [v if isinstance(v, list) else [] for v in rows["candidate_scores"]]
    rows = rows.reset_index()
    rows["event_timestamp"] = window_end
    prof_rows = profiles[["user_id", "profile_text", "profile_tokens"]].copy()
    prof_rows["event_timestamp"] = window_end
    with _maybe_lock(push_lock):
        pushed = {
            "user_profile": push(store, "user_profile_push", prof_rows, to="online_and_offline"),
            "user_candidates": push(store, "user_candidates_push", rows[CANDIDATE_COLUMNS], to="online_and_offline"),
        }
    return pushed, rows


def _maybe_lock(path: Path | None) -> contextlib.AbstractContextManager[Any]:
    if path is None:
        return contextlib.nullcontext()
    from seren.registry.store import file_lock

    return file_lock(path, blocking=True)


def _window_id(before: pd.Timestamp | None, end: pd.Timestamp) -> str:
    fmt = "%Y%m%dT%H%M%S%fZ"
    return f"{before.strftime(fmt) if before is not None else 'start'}-{end.strftime(fmt)}"


def append_window_judgments(
    cfg: NearlineConfig,
    pairs: pd.DataFrame,
    profiles: pd.DataFrame,
    items: pd.DataFrame,
    window_end: pd.Timestamp,
    before: pd.Timestamp | None,
    part: str = "",
    *,
    threshold: float,
) -> str | None:
    """Every scored (user, candidate) as a monitoring judgment; the part is named after the window,
    so a re-run of the window replaces it instead of adding a copy. `threshold`: the resolved decision
    threshold (seren.nearline.sources.decision_threshold), never cfg.threshold's -1."""
    if cfg.judgments_dir == "none" or pairs.empty:
        return None
    from monitoring.judgments import append_judgments, build_judgments

    scores = pairs[["user_id", "item_id", "score"]].assign(event_timestamp=window_end)
    pop = items[["item_id", "popularity"]].assign(item_id=items["item_id"].astype(str))
    j = build_judgments(scores, profiles, pop, threshold=threshold)
    return str(
        append_judgments(j, cfg.judgments_dir or None, run_id=f"nearline-{_window_id(before, window_end)}{part}")
    )
