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
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren.errors import ConfigError, DataError, ServiceError
from seren.nearline.candidates import add_serendipity_source, serendipity_channel
from seren.nearline.state import WatermarkStore, nearline_dir

log = logging.getLogger(__name__)

STAGES = ("setup", "profiles", "candidates", "scoring", "feast_writes")  # setup: artifacts, tokenizer, Triton check
# Test/ops seam: seconds to sleep after each Triton batch. Production use: throttle a nearline
# job that shares Triton with online traffic; tests use it to kill a run mid-scoring.
BATCH_DELAY_ENV = "SEREN_NEARLINE_BATCH_DELAY_S"

StageCallback = Callable[[str, dict[str, Any]], None]


@dataclass
class NearlineConfig:
    """What one run reads and how much it does.

    exploration_dir: the published exploration outputs (`clusters/`, `pair_table.parquet`,
    `seqrec/`; default `$SEREN_HOME/exploration`); clusters_dir/pair_table/seqrec_dir override
    single parts. model: the SerenGPT model dir (its tokenizer and the profile token budget it was
    trained with, from its card) or a base model name for the tokenizer only.
    """

    dataset_dir: str = ""  # "": the dataset of the published exploration run
    triton_url: str = "127.0.0.1:8000"
    exploration_dir: str | None = None
    clusters_dir: str | None = None
    pair_table: str | None = None
    seqrec_dir: str | None = None
    model: str = "smollm2"
    token_budget: int | None = None
    k_main: int = 20
    k_explore: int = 10
    n_novel: int = 3
    top_n: int = 10
    threshold: float = 0.5
    batch_size: int = 64
    scoring: str = "packed"  # "packed": one request row per user (serengpt_packed); "pair": serengpt
    batch_delay_s: float | None = None  # None: env SEREN_NEARLINE_BATCH_DELAY_S, else 0
    protocol: str = "http"
    timeout_s: float = 30.0
    retries: int = 3
    feast_target: str | None = None
    feast_data_dir: str | None = None
    state_uri: str | None = None  # default: <feast data dir>/nearline; gs://bucket/prefix in production
    # first run only (no watermark yet): start this far before the newest event ("1d", "6h") instead
    # of refreshing every user; the batch pipelines already built everyone's profiles
    initial_lookback: str | None = None
    judgments_dir: str | None = None  # default monitoring.judgments.default_current_dir(); "none" = skip

    def validate(self) -> NearlineConfig:
        checks = [
            (self.k_main >= 1, f"k_main must be >= 1 (got {self.k_main})"),
            (self.k_explore >= 0, f"k_explore must be >= 0 (got {self.k_explore})"),
            (self.n_novel >= 1, f"n_novel must be >= 1 (got {self.n_novel})"),
            (self.top_n >= 1, f"top_n must be >= 1 (got {self.top_n})"),
            (0.0 <= self.threshold <= 1.0, f"threshold must be in [0, 1] (got {self.threshold})"),
            (self.batch_size >= 1, f"batch_size must be >= 1 (got {self.batch_size})"),
            (self.scoring in ("packed", "pair"), f"scoring must be packed or pair (got {self.scoring!r})"),
            (self.token_budget is None or self.token_budget >= 8, "token_budget must be >= 8"),
            (self.batch_delay_s is None or self.batch_delay_s >= 0, "batch_delay_s must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"invalid nearline setting: {msg}", "pass a value in the allowed range")
        self.lookback()
        if not self.dataset_dir:
            self.dataset_dir = self._published_dataset()
        if not Path(self.dataset_dir).is_dir():
            raise ConfigError(
                f"dataset directory {self.dataset_dir} does not exist",
                "pass the dataset the features pipeline ingested (--data DIR)",
            )
        return self

    def _published_dataset(self) -> str:
        """No dataset given: the one the published exploration run was built from."""
        import json

        from seren.exploration.workflow import default_publish_dir

        f = (Path(self.exploration_dir) if self.exploration_dir else default_publish_dir()) / "exploration.json"
        found = json.loads(f.read_text()).get("dataset") if f.is_file() else None
        if not found:
            raise ConfigError(
                f"no dataset given and {f} names none", "pass --data DIR (the dataset the features pipeline ingested)"
            )
        return str(found)

    def lookback(self) -> pd.Timedelta | None:
        if not self.initial_lookback:
            return None
        try:
            td = pd.Timedelta(str(self.initial_lookback).strip())
        except ValueError:
            td = None
        if td is None or td <= pd.Timedelta(0):
            raise ConfigError(
                f"initial lookback {self.initial_lookback!r} is not a positive duration", "pass e.g. 1d, 6h or 30min"
            )
        return td

    def batch_delay(self) -> float:
        if self.batch_delay_s is not None:
            return float(self.batch_delay_s)
        raw = os.environ.get(BATCH_DELAY_ENV, "").strip()
        try:
            return max(0.0, float(raw)) if raw else 0.0
        except ValueError:
            raise ConfigError(f"{BATCH_DELAY_ENV}={raw!r} is not a number", "set it to seconds, e.g. 0.5") from None


# ------------------------------------------------------------------------------------ artifacts


@dataclass
class Exploration:
    """The exploration pipeline's outputs that candidate generation needs."""

    item_to_cluster: dict[str, str]
    cluster_items: dict[str, set[str]]
    lookup: Any  # seren.exploration.pair_table.PairLookup
    seqrec: Any  # seren.exploration.seqrec.SeqRecModel

    @classmethod
    def load(cls, cfg: NearlineConfig) -> Exploration:
        from seren.exploration.clusters import Clusters
        from seren.exploration.pair_table import TABLE_FILE, PairLookup, load_pair_table
        from seren.exploration.seqrec import SeqRecModel
        from seren.exploration.workflow import default_publish_dir

        pub = Path(cfg.exploration_dir) if cfg.exploration_dir else default_publish_dir()
        clusters_dir = Path(cfg.clusters_dir) if cfg.clusters_dir else pub / "clusters"
        table = Path(cfg.pair_table) if cfg.pair_table else pub / TABLE_FILE
        seqrec_dir = Path(cfg.seqrec_dir) if cfg.seqrec_dir else pub / "seqrec"
        for what, p in (("clusters", clusters_dir), ("pair table", table), ("sequence recommender", seqrec_dir)):
            if not p.exists():
                raise ConfigError(
                    f"no {what} at {p}",
                    "run the exploration pipeline first (`seren pipeline run exploration --local`) "
                    "or pass --exploration DIR",
                )
        cl = Clusters.load(clusters_dir)
        i2c = {str(k): str(v) for k, v in cl.item_to_cluster.items()}
        by_cluster: dict[str, set[str]] = {}
        for item, c in i2c.items():
            by_cluster.setdefault(c, set()).add(item)
        return cls(i2c, by_cluster, PairLookup(load_pair_table(table)), SeqRecModel.load(seqrec_dir))


def _token_budget(cfg: NearlineConfig) -> int:
    """The budget the model was trained with (its card), so nearline prompts match training."""
    from seren.serengpt.recipe import model_recipe

    return int(model_recipe(cfg.model, cfg.token_budget)["token_budget"])


def _profile_config(cfg: NearlineConfig) -> Any:
    """The profile knobs of the model's prompt recipe (one prompt per model, wherever it is scored)."""
    from seren.serengpt.recipe import model_recipe, profile_config

    return profile_config(model_recipe(cfg.model, cfg.token_budget))


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


def _batches(n: int, size: int) -> Iterator[slice]:
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


def score_pairs(
    pairs: pd.DataFrame,
    client: Any,
    batch_size: int,
    delay_s: float = 0.0,
    progress: Callable[[Iterable[Any], int, str], Iterable[Any]] | None = None,
) -> np.ndarray:
    """SerenGPT P(Yes) for every (profile_text, item_text) row, in batches over Triton."""
    n = len(pairs)
    out = np.zeros(n, dtype=np.float32)
    profiles = pairs["profile_text"].tolist()
    if "relation_fields" in pairs.columns:  # sent to Triton inside the PROFILE_TEXT envelope
        from seren.llm.relation import profile_input

        profiles = [profile_input(p, f) for p, f in zip(profiles, pairs["relation_fields"].fillna(""), strict=True)]
    items = pairs["item_text"].tolist()
    chunks: Iterable[slice] = list(_batches(n, batch_size))
    if progress is not None:
        chunks = progress(chunks, math.ceil(n / batch_size), "scoring on Triton")
    for sl in chunks:
        out[sl] = client.score(profiles[sl], items[sl])
        if delay_s:
            time.sleep(delay_s)
    return out


def score_packed(
    pairs: pd.DataFrame,
    client: Any,
    delay_s: float = 0.0,
    progress: Callable[[Iterable[Any], int, str], Iterable[Any]] | None = None,
) -> np.ndarray:
    """SerenGPT P(Yes) for every row, one request row per user on the serengpt_packed ensemble:
    the user's shared part (system text + profile) is computed once per pack, not once per pair."""
    out = np.zeros(len(pairs), dtype=np.float32)
    profiles = pairs["profile_text"].tolist()
    if "relation_fields" in pairs.columns:  # sent to Triton inside the PROFILE_TEXT envelope
        from seren.llm.relation import profile_input

        profiles = [profile_input(p, f) for p, f in zip(profiles, pairs["relation_fields"].fillna(""), strict=True)]
    items = pairs["item_text"].tolist()
    groups = list(pairs.groupby("user_id", sort=False).indices.values())
    step = client.users_per_request
    chunks: Iterable[int] = range(0, len(groups), step)
    if progress is not None:
        chunks = progress(chunks, math.ceil(len(groups) / step), "scoring on Triton (packed)")
    for s in chunks:
        part = groups[s : s + step]
        scores = client.score_users([(profiles[g[0]], [items[i] for i in g]) for g in part])
        for g, sc in zip(part, scores, strict=True):
            out[g] = sc
        if delay_s:
            time.sleep(delay_s)
    return out


def select_top(scored: pd.DataFrame, top_n: int, threshold: float) -> pd.DataFrame:
    """Per user: the top_n items scoring >= threshold, best first (ties by item id, deterministic)."""
    keep = scored[scored["score"] >= threshold].sort_values(
        ["user_id", "score", "item_id"], ascending=[True, False, True], kind="stable"
    )
    keep = keep.groupby("user_id", sort=False).head(top_n)
    return keep.groupby("user_id", sort=False).agg(
        candidate_item_ids=("item_id", list), candidate_scores=("score", lambda s: [float(x) for x in s])
    )


# ------------------------------------------------------------------------------------ run


@contextlib.contextmanager
def _timed(stage_s: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        stage_s[name] = round(stage_s.get(name, 0.0) + time.perf_counter() - t0, 4)


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


def run_nearline(
    cfg: NearlineConfig,
    store: Any | None = None,
    on_stage: StageCallback | None = None,
    progress: Callable[[Iterable[Any], int, str], Iterable[Any]] | None = None,
) -> dict[str, Any]:
    """One nearline run over the window (watermark, newest event]; returns the run summary.

    Summary keys: users_changed, users_refreshed, users_skipped_no_history (changed users without
    a positive engagement: no interests to profile or explore from; not pushed), items_scored,
    pushed {user_profile, user_candidates}, judgments (part path or None), watermark_before/after,
    window_end, stage_seconds {setup, profiles, candidates, scoring, feast_writes}, seconds.
    """
    from feature_repo.store import data_dir_of

    t_run = time.perf_counter()
    cfg.validate()
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
            "candidates_kept": 0,
            "pushed": {"user_profile": 0, "user_candidates": 0},
            "judgments": None,
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
    progress: Callable[[Iterable[Any], int, str], Iterable[Any]] | None = None,
    judgments_part: str = "",
    push_lock: Path | None = None,
) -> dict[str, Any]:
    """Profiles -> candidates -> Triton -> Feast push -> judgments for `users` of one window: all a
    run (or one shard of it, seren.nearline.shard) does except moving the watermark. Idempotent:
    rows carry the window end and the judgments part is named after the window (+ `judgments_part`),
    so a retried run or shard writes the same rows. `push_lock`: a file lock held around the Feast
    writes (shards of one window sharing a local SQLite/parquet store)."""
    from feature_repo.store import push

    stage_s = stage_s if stage_s is not None else {s: 0.0 for s in STAGES}
    say = on_stage or (lambda _name, _info: None)
    delay = cfg.batch_delay()
    pushed = {"user_profile": 0, "user_candidates": 0}
    from seren.exploration.seqrec import user_histories

    histories = user_histories(ds, users=users)
    refresh = [u for u in users if histories.get(u)]
    skipped = [u for u in users if not histories.get(u)]
    if skipped:
        log.info("nearline: %d changed user(s) without positive history skipped", len(skipped))

    from seren.llm.calibration import load_calibration
    from serving.client import SerenClient

    # scores (and the threshold) are the model card's calibrated probability (issue 12)
    cal = load_calibration(cfg.model) if cfg.model else None
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
                _tokenizer(str(cfg.model))  # loaded once per process (first tick only)

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
            pairs = _pairs(cands, profiles, ds.items)

        # 3. SerenGPT on Triton
        say("scoring", {"pairs": len(pairs), "batch_size": cfg.batch_size, "mode": scoring})
        with _timed(stage_s, "scoring"):
            if scoring == "packed":
                pairs["score"] = score_packed(pairs, client, delay, progress)
            else:
                pairs["score"] = score_pairs(pairs, client, cfg.batch_size, delay, progress)
    finally:
        client.close()
    top = (
        select_top(serendipity_channel(pairs, cands), cfg.top_n, cfg.threshold)
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

    # 4. Feast (online + offline), then the monitoring judgments, then the watermark
    say("feast_writes", {"profiles": len(prof_rows), "candidates": len(rows)})
    with _timed(stage_s, "feast_writes"), _maybe_lock(push_lock):
        pushed["user_profile"] = push(store, "user_profile_push", prof_rows, to="online_and_offline")
        pushed["user_candidates"] = push(
            store,
            "user_candidates_push",
            rows[
                [
                    "user_id",
                    "candidate_item_ids",
                    "candidate_scores",
                    "main_item_ids",
                    "explore_item_ids",
                    "cluster_pair",
                    "event_timestamp",
                ]
            ],
            to="online_and_offline",
        )
    judgments = _append_judgments(cfg, pairs, profiles, ds.items, window_end, start, part=judgments_part)
    return {
        "users_refreshed": len(refresh),
        "users_skipped_no_history": len(skipped),
        "items_scored": len(pairs),
        "candidates_kept": int(sum(len(v) for v in rows["candidate_item_ids"])),
        "pushed": pushed,
        "judgments": judgments,
    }


def _maybe_lock(path: Path | None) -> contextlib.AbstractContextManager[Any]:
    if path is None:
        return contextlib.nullcontext()
    from seren.registry.store import file_lock

    return file_lock(path, blocking=True)


@functools.lru_cache(maxsize=4)
def _tokenizer(model: str) -> Any:
    """Loaded once per process: a `--every` loop must not pay the tokenizer load on every tick."""
    from seren.profiles import load_tokenizer

    return load_tokenizer(model)


def _profiles(ds: Any, cfg: NearlineConfig, users: list[str]) -> pd.DataFrame:
    from seren.profiles import build_profiles

    if not users:
        return pd.DataFrame(columns=["user_id", "profile_text", "profile_tokens", "category_entropy"])
    tok = _tokenizer(str(cfg.model))
    df = build_profiles(ds, tok, token_budget=_token_budget(cfg), users=users, config=_profile_config(cfg))
    df["user_id"] = df["user_id"].astype(str)
    return df.reset_index(drop=True)


def _pairs(cands: pd.DataFrame, profiles: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, candidate) in the union of the two slates, with the texts SerenGPT reads."""
    from seren.profiles import item_text

    text = item_text(items).set_axis(items["item_id"].astype(str).to_numpy())
    prof = profiles.set_index("user_id")["profile_text"]
    ser = cands["serendipity_item_ids"] if "serendipity_item_ids" in cands.columns else [[]] * len(cands)
    recs = [
        (u, i)
        for u, m, e, s in zip(cands["user_id"], cands["main_item_ids"], cands["explore_item_ids"], ser, strict=True)
        for i in dict.fromkeys([*m, *e, *s])
        if i in text.index
    ]
    df = pd.DataFrame(recs, columns=["user_id", "item_id"])
    if df.empty:
        return df.assign(profile_text=pd.Series(dtype=object), item_text=pd.Series(dtype=object))
    df["profile_text"] = prof.reindex(df["user_id"]).to_numpy()
    if "relation_fields" in profiles.columns:  # structured fields of the relation line (seren.llm.relation)
        df["relation_fields"] = profiles.set_index("user_id")["relation_fields"].reindex(df["user_id"]).to_numpy()
    df["item_text"] = text.reindex(df["item_id"]).to_numpy()
    if df["profile_text"].isna().any():
        raise DataError("a refreshed user has no profile", "check build_profiles output")  # pragma: no cover
    return df


def _window_id(before: pd.Timestamp | None, end: pd.Timestamp) -> str:
    fmt = "%Y%m%dT%H%M%S%fZ"
    return f"{before.strftime(fmt) if before is not None else 'start'}-{end.strftime(fmt)}"


def _append_judgments(
    cfg: NearlineConfig,
    pairs: pd.DataFrame,
    profiles: pd.DataFrame,
    items: pd.DataFrame,
    window_end: pd.Timestamp,
    before: pd.Timestamp | None,
    part: str = "",
) -> str | None:
    """Every scored (user, candidate) as a monitoring judgment; the part is named after the window,
    so a re-run of the window replaces it instead of adding a copy."""
    if cfg.judgments_dir == "none" or pairs.empty:
        return None
    from monitoring.judgments import append_judgments, build_judgments

    scores = pairs[["user_id", "item_id", "score"]].assign(event_timestamp=window_end)
    pop = items[["item_id", "popularity"]].assign(item_id=items["item_id"].astype(str))
    j = build_judgments(scores, profiles, pop, threshold=cfg.threshold)
    return str(
        append_judgments(j, cfg.judgments_dir or None, run_id=f"nearline-{_window_id(before, window_end)}{part}")
    )


def run_loop(
    cfg: NearlineConfig,
    every_s: float,
    on_run: Callable[[dict[str, Any]], None] | None = None,
    on_stage: StageCallback | None = None,
    progress: Callable[[Iterable[Any], int, str], Iterable[Any]] | None = None,
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


def config_dict(cfg: NearlineConfig) -> dict[str, Any]:
    return asdict(cfg)
