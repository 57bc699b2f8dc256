"""SERAL stage 3: nearline adaptation.

SerenGPT is too slow for the request path, so this job runs every few minutes: users whose
behaviour changed since the watermark get a fresh cognition profile, candidates from the
sequence recommender (the unrestricted top items = main slate, and the same recommender
restricted to the novel clusters the pair table proposes for the user's last cluster pair =
exploration slate), SerenGPT scores for the union from Triton, and the top-N above a threshold
are cached in Feast (online and offline); the online path (`seren recommend`) only reads.

Exactly-once in effect: every row pushed carries the *window end* (the newest event time the
run saw) as its event_timestamp, never the wall clock, and the monitoring judgments part is
named after the window; so a run that dies anywhere before the watermark moves is simply run
again and leaves the same online state, offline rows (de-duplicated on key + event time) and
judgments. The watermark moves last, after every push succeeded.

The watermark is in event time: an event that arrives late with a timestamp at or before the
watermark is picked up with the user's next newer event (an event log with ingestion times would
key the watermark on those instead).

One concern per module: `config` (the settings, defined once), `sources` (the deployed scorer's card
and the exploration bundle, resolved once), `scoring` (Triton), `push` (Feast and the judgments),
`shard` (plan -> shards -> commit); this module runs the window: changed users -> profiles ->
candidates -> scoring -> push -> watermark.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from seren.errors import ConfigError, ServiceError
from seren.nearline.candidates import add_serendipity_source
from seren.nearline.config import BATCH_DELAY_ENV, NearlineConfig
from seren.nearline.push import append_window_judgments, open_store, push_window
from seren.nearline.scoring import Progress, build_pairs, score_packed, score_pairs, select_top
from seren.nearline.sources import (
    Exploration,
    calibration,
    decision_threshold,
    profile_config,
    token_budget,
    tokenizer,
)
from seren.nearline.state import WatermarkStore, nearline_dir

log = logging.getLogger(__name__)

STAGES = ("setup", "profiles", "candidates", "scoring", "feast_writes")  # setup: artifacts, tokenizer, Triton check
StageCallback = Callable[[str, dict[str, Any]], None]
__all__ = [  # select_top, score_*, BATCH_DELAY_ENV: re-exported for the tests and benchmarks that import them here
    "BATCH_DELAY_ENV",
    "STAGES",
    "Exploration",
    "NearlineConfig",
    "StageCallback",
    "build_candidates",
    "changed_users",
    "open_store",
    "process_users",
    "run_loop",
    "run_nearline",
    "score_packed",
    "score_pairs",
    "select_top",
]


# ------------------------------------------------------------------------------------ stages


def changed_users(interactions: pd.DataFrame, watermark: pd.Timestamp | None) -> tuple[list[str], pd.Timestamp | None]:
    """Users with an event newer than the watermark (all users when there is none), and the window
    end: the newest event time seen (events are processed up to and including it)."""
    if interactions.empty:
        return [], None
    ts = pd.to_datetime(interactions["timestamp"], utc=True)
    end = ts.max()
    new = interactions if watermark is None else interactions[ts > watermark]
    return sorted(new["user_id"].astype(str).unique()), end


def build_candidates(
    histories: dict[str, list[str]],
    interactions: pd.DataFrame,
    ex: Exploration,
    k_main: int,
    k_explore: int,
    n_novel: int,
) -> pd.DataFrame:
    """Per user: main slate (recommender, whole catalogue), exploration slate (recommender inside
    the novel clusters of the user's last cluster pair, minus the main slate: exploration adds
    exposure) and the cluster pair ("" below two clusters; one cluster c still explores from the
    table's (c, c) row, as `seren explore` does). The exploration part is
    `seren.exploration.lookup.explore_users`, the one definition `seren explore` uses too."""
    from seren.exploration.lookup import explore_users

    users = list(histories)
    if not users:
        cols = ["user_id", "main_item_ids", "explore_item_ids", "cluster_pair", "novel_clusters"]
        return pd.DataFrame(columns=cols)
    main = ex.seqrec.recommend_batch([histories[u] for u in users], k=k_main)
    slates = explore_users(
        histories,
        interactions,
        ex.item_to_cluster,
        ex.lookup,
        ex.seqrec,
        k=k_explore,
        n_novel=n_novel,
        cluster_items=ex.cluster_items,
        exclude={u: {i for i, _ in m} for u, m in zip(users, main, strict=True)},
    )
    return pd.DataFrame(
        {
            "user_id": users,
            "main_item_ids": [[i for i, _ in r] for r in main],
            "explore_item_ids": [[i for i, _ in slates[u].items] for u in users],
            "cluster_pair": [slates[u].pair_key for u in users],
            "novel_clusters": [slates[u].novel_clusters for u in users],
        }
    )


# ------------------------------------------------------------------------------------ run


@contextlib.contextmanager
def _timed(stage_s: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        stage_s[name] = round(stage_s.get(name, 0.0) + time.perf_counter() - t0, 4)


def run_nearline(
    cfg: NearlineConfig,
    store: Any | None = None,
    on_stage: StageCallback | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """One nearline run over the window (watermark, newest event]; returns the run summary.

    Summary keys: users_changed, users_refreshed, users_skipped_no_history (changed users without
    a positive engagement: no interests to profile or explore from; not pushed), items_scored,
    items_judged (scored >= the decision threshold, `threshold`),
    pushed {user_profile, user_candidates}, judgments (part path or None), watermark_before/after,
    window_end, stage_seconds {setup, profiles, candidates, scoring, feast_writes}, seconds.
    """
    from feature_repo.store import data_dir_of

    t_run = time.perf_counter()
    cfg.resolve()  # scorer card (registry environment or --model), exploration bundle, dataset
    cfg.batch_delay()  # a bad SEREN_NEARLINE_BATCH_DELAY_S fails before any work
    say = on_stage or (lambda _name, _info: None)
    if store is None:
        store = open_store(cfg.feast_target, cfg.feast_data_dir)  # fails fast when the store is down
    local_state = nearline_dir(data_dir_of(store))
    state = WatermarkStore(cfg.state_uri or local_state)
    stage_s: dict[str, float] = {s: 0.0 for s in STAGES}
    with _timed(stage_s, "setup"):
        ex = Exploration.load(cfg)  # before any work: a missing artifact is a one-line error
    with state.run_lock(local_state):
        before = state.watermark()
        from seren.data import load_dataset

        ds = load_dataset(cfg.dataset_dir)
        start = before
        if before is None and cfg.lookback() is not None and not ds.interactions.empty:
            start = pd.to_datetime(ds.interactions["timestamp"], utc=True).max() - cfg.lookback()
        users, window_end = changed_users(ds.interactions, start)
        summary: dict[str, Any] = {
            "watermark_before": before.isoformat() if before is not None else None,
            "watermark_after": before.isoformat() if before is not None else None,
            "window_start": start.isoformat() if start is not None else None,
            "window_end": window_end.isoformat() if window_end is not None else None,
            "state": state.uri,
            "users_changed": len(users),
            "users_refreshed": 0,
            "users_skipped_no_history": 0,
            "items_scored": 0,
            "items_judged": 0,
            "candidates_kept": 0,
            "pushed": {"user_profile": 0, "user_candidates": 0},
            "judgments": None,
            "sources": cfg.sources,  # the deployed scorer version / model dir and the exploration bundle used
            "stage_seconds": stage_s,
        }
        say(
            "window",
            {"watermark": summary["watermark_before"], "window_end": summary["window_end"], "users": len(users)},
        )
        if not users:
            summary["seconds"] = round(time.perf_counter() - t_run, 3)
            say("done", {"users_refreshed": 0})
            return summary

        done = process_users(
            cfg, ds, ex, users, window_end, start, store, stage_s=stage_s, on_stage=say, progress=progress
        )
        summary.update(done)
        after = state.write(
            window_end,
            users_refreshed=done["users_refreshed"],
            users_skipped_no_history=done["users_skipped_no_history"],
            previous=summary["watermark_before"],
        )
        summary.update(watermark_after=after["watermark"], seconds=round(time.perf_counter() - t_run, 3))
        say("done", {k: summary[k] for k in ("users_refreshed", "users_skipped_no_history", "items_scored")})
        return summary


def process_users(
    cfg: NearlineConfig,
    ds: Any,
    ex: Exploration,
    users: list[str],
    window_end: pd.Timestamp,
    start: pd.Timestamp | None,
    store: Any,
    *,
    stage_s: dict[str, float] | None = None,
    on_stage: StageCallback | None = None,
    progress: Progress | None = None,
    judgments_part: str = "",
    push_lock: Path | None = None,
) -> dict[str, Any]:
    """Profiles -> candidates -> Triton -> Feast push -> judgments for `users` of one window: all a
    run (or one shard of it, seren.nearline.shard) does except moving the watermark. Idempotent:
    rows carry the window end and the judgments part is named after the window (+ `judgments_part`),
    so a retried run or shard writes the same rows. `push_lock`: a file lock held around the Feast
    writes (shards of one window sharing a local SQLite/parquet store)."""
    stage_s = stage_s if stage_s is not None else {s: 0.0 for s in STAGES}
    say = on_stage or (lambda _name, _info: None)
    delay = cfg.batch_delay()
    from seren.exploration.seqrec import user_histories

    histories = user_histories(ds, users=users)
    refresh = [u for u in users if histories.get(u)]
    skipped = [u for u in users if not histories.get(u)]
    if skipped:
        log.info("nearline: %d changed user(s) without positive history skipped", len(skipped))

    from serving.client import SerenClient

    # scores (and the threshold) are the model card's calibrated probability (issue 12)
    cal = calibration(cfg)
    threshold = decision_threshold(cfg)
    from serving.packed_client import PackedClient

    scoring = cfg.scoring
    make = PackedClient if scoring == "packed" else SerenClient
    client = make(cfg.triton_url, cfg.protocol, timeout=cfg.timeout_s, retries=cfg.retries, calibration=cal)  # type: ignore[arg-type]
    try:
        with _timed(stage_s, "setup"):
            if refresh:
                try:
                    client.check_model()  # Triton down: bounded retries, then a one-line ServiceError
                except ServiceError as exc:  # a server without the packed ensemble: score per pair, say so
                    if scoring != "packed" or client.model not in exc.problem or "unreachable" in exc.problem:
                        raise
                    log.warning("nearline: %s; scoring per pair on serengpt instead", exc.problem)
                    client.close()
                    scoring = "pair"
                    client = SerenClient(
                        cfg.triton_url, cfg.protocol, timeout=cfg.timeout_s, retries=cfg.retries, calibration=cal
                    )  # type: ignore[arg-type]
                    client.check_model()
                # the served graph applies the card's map itself, or the client does (older graph);
                # a served map that is not this card's is refused here, before any scoring
                client.calibration_to_apply()
                tokenizer(cfg.scorer_dir)  # loaded once per process (first tick only)

        # 1. cognition profiles (the model's tokenizer and training token budget)
        say("profiles", {"users": len(refresh)})
        with _timed(stage_s, "profiles"):
            profiles = _profiles(ds, cfg, refresh)

        # 2. candidates: main + exploration slates
        say("candidates", {"users": len(refresh)})
        with _timed(stage_s, "candidates"):
            cands = build_candidates(
                {u: histories[u] for u in refresh}, ds.interactions, ex, cfg.k_main, cfg.k_explore, cfg.n_novel
            )
            # serendipity source outside the user's engaged categories (seren.nearline.candidates)
            cands = add_serendipity_source(cands, histories, ds.items, ds.interactions)
            pairs = build_pairs(cands, profiles, ds.items)

        # 3. SerenGPT on Triton
        say("scoring", {"pairs": len(pairs), "batch_size": cfg.batch_size, "mode": scoring})
        with _timed(stage_s, "scoring"):
            if scoring == "packed":
                pairs["score"] = score_packed(pairs, client, delay, progress)
            else:
                pairs["score"] = score_pairs(pairs, client, cfg.batch_size, delay, progress)
    finally:
        client.close()
    # 4. Feast (online + offline), then the monitoring judgments; the caller moves the watermark last
    say("feast_writes", {"profiles": len(profiles), "candidates": len(cands)})
    with _timed(stage_s, "feast_writes"):
        pushed, rows = push_window(store, cands, pairs, profiles, window_end, cfg.top_n, threshold, push_lock)
    judgments = append_window_judgments(
        cfg, pairs, profiles, ds.items, window_end, start, part=judgments_part, threshold=threshold
    )
    return {
        "users_refreshed": len(refresh),
        "users_skipped_no_history": len(skipped),
        "items_scored": len(pairs),
        "items_judged": int((pairs["score"] >= threshold).sum()) if len(pairs) else 0,
        "threshold": threshold,
        "candidates_kept": int(sum(len(v) for v in rows["candidate_item_ids"])),
        "pushed": pushed,
        "judgments": judgments,
    }


def run_metrics(res: dict[str, Any], keys: Sequence[str]) -> dict[str, float]:
    """A run or shard summary's KFP metrics: `keys`, plus the share of scored candidates judged
    serendipitous and the threshold that judged them (issue 12)."""
    out = {k: res[k] for k in keys if k in res}
    if res.get("items_scored"):
        out["judged_share"] = round(int(res.get("items_judged", 0)) / int(res["items_scored"]), 4)
    if res.get("threshold") is not None:
        out["threshold"] = round(float(res["threshold"]), 4)
    return out


def _profiles(ds: Any, cfg: NearlineConfig, users: list[str]) -> pd.DataFrame:
    from seren.profiles import build_profiles

    if not users:
        return pd.DataFrame(columns=["user_id", "profile_text", "profile_tokens", "category_entropy"])
    tok = tokenizer(cfg.scorer_dir)
    df = build_profiles(ds, tok, token_budget=token_budget(cfg), users=users, config=profile_config(cfg))
    df["user_id"] = df["user_id"].astype(str)
    return df.reset_index(drop=True)


def run_loop(
    cfg: NearlineConfig,
    every_s: float,
    on_run: Callable[[dict[str, Any]], None] | None = None,
    on_stage: StageCallback | None = None,
    progress: Progress | None = None,
    max_runs: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_error: Callable[[ServiceError], None] | None = None,
) -> tuple[int, int]:
    """Run every `every_s` seconds (start to start) until interrupted or `max_runs`; returns (runs,
    failed runs). A service outage (Triton, Feast) fails that tick only: the watermark did not move,
    so the next tick retries the window. Bad settings or data stop the loop."""
    if every_s <= 0:
        raise ConfigError(f"--every must be > 0 seconds (got {every_s})", "pass e.g. --every 900")
    store = open_store(cfg.feast_target, cfg.feast_data_dir)
    runs = failed = 0
    while max_runs is None or runs < max_runs:
        t0 = time.monotonic()
        try:
            res = run_nearline(cfg, store=store, on_stage=on_stage, progress=progress)
        except ServiceError as exc:
            failed += 1
            if on_error is None:
                raise
            on_error(exc)
        else:
            if on_run is not None:
                on_run(res)
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        sleep(max(0.0, every_s - (time.monotonic() - t0)))
    return runs, failed
