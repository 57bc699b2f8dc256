"""Online recommendation: assemble a slate from what the nearline job cached, reading only the
online feature store (SERAL stage 3: SerenGPT is too slow for the request path).

Reads per request (``feature_repo.store.get_online``, freshness enforced by the reader):

1. ``user_candidates`` for the user: ``main_item_ids`` (sequence recommender, unrestricted),
   ``candidate_item_ids``/``candidate_scores`` (SerenGPT, above threshold), ``explore_item_ids``
   (recommender restricted to the novel clusters of the user's last ``cluster_pair``).
2. ``novel_interests`` for that pair: the novel clusters that label the exploration slot.
3. ``item_features`` for the chosen items: titles and categories.
4. ``user_stats`` only when (1) has no row, to tell "unknown user" from "no cached candidates".

The slot layout and the slate itself come from `seren.slate` (pure, shared with the simulator).

Fallbacks never fail the request: a stale or missing source turns its slots into main items and
the reason is listed (e.g. ``serendipity: candidates stale (age 3.0d > max 2.0d)``). Only an
unknown user, a user with no cached main slate at all (there is no online source of popular
items to fall back to: the online store is keyed, it cannot be scanned) or an unreachable store
are errors.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from seren.errors import ConfigError, DataError
from seren.slate import MAX_K, CachedCandidates, build_slate, check_sizes, slot_layout

__all__ = [
    "MAX_K",
    "CachedCandidates",
    "build_slate",
    "SerenRecommendError",
    "check_sizes",
    "fmt_age",
    "format_slate",
    "nearline_clock",
    "pick_users",
    "sample_slates",
    "recommend",
    "slot_layout",
]


class SerenRecommendError(DataError):
    """The online store has nothing to serve this user."""


_ENGAGED_RE = re.compile(r"Engaged subcategories: (.*?)( \(\+\d+ more\))?; ")


def engaged_categories(profile_text: str) -> tuple[set[str], bool] | None:
    """The engaged subcategories a cognition profile lists, and whether the list is complete
    (profiles cap it: "(+N more)"); None when the profile has no such line."""
    m = _ENGAGED_RE.search(profile_text or "")
    if m is None:
        return None
    names = {part.strip().rpartition(" ")[0] for part in m.group(1).split(", ")}
    return {n for n in names if n}, m.group(2) is None


def outside_history(category: str | None, engaged: tuple[set[str], bool] | None) -> bool | None:
    """True/False when the profile decides it; None when unknown (no profile or category, or the
    category is not in a truncated list)."""
    if category is None or engaged is None:
        return None
    names, complete = engaged
    if category in names:
        return False
    return True if complete else None


def fmt_age(seconds: float) -> str:
    """Short human age: 45s, 12m, 5.0h, 3.0d."""
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _ids(value: Any) -> list[str]:
    return [] if value is None else [str(v) for v in value]


def _floats(value: Any) -> list[float]:
    return [] if value is None else [float(v) for v in value]


def _iso(ts: datetime) -> str:
    import pandas as pd

    t = pd.Timestamp(ts)
    return (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).isoformat()


def _rows(df: Any) -> list[dict[str, Any]]:
    """Plain dict rows, built column-wise (``DataFrame.iloc`` per row cost more than the read)."""
    cols = {c: df[c].tolist() for c in df.columns}
    return [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]


def _row_info(row: dict[str, Any]) -> dict[str, Any]:
    age = row["age_s"]
    ts = row["event_timestamp"]
    return {
        "status": str(row["status"]),
        "age_s": None if age is None or (isinstance(age, float) and math.isnan(age)) else round(float(age), 3),
        "event_timestamp": None if ts is None or ts != ts else ts.isoformat(),  # NaT != NaT
    }


def nearline_clock(store: Any) -> datetime:
    """The nearline watermark (newest event time processed) as the reference time for ages.

    The nearline job stamps rows with the event time of its window, not the wall clock, so on
    replayed data (synthetic, MovieLens: events in the past) every row is "stale" by the wall
    clock; judged against the watermark, a row is stale when it lags the data the job has seen.
    """
    from feature_repo import store as fs
    from seren.nearline.state import WatermarkStore, nearline_dir

    wm_store = WatermarkStore(nearline_dir(fs.data_dir_of(store)))
    wm = wm_store.watermark()
    if wm is None:
        raise ConfigError(f"no nearline watermark at {wm_store.uri}", "run `seren nearline run` first, or drop --now")
    return wm.to_pydatetime()


def recommend(
    store: Any,
    user_id: str,
    k: int = 10,
    n_serendipity: int = 2,
    n_explore: int = 1,
    max_age: timedelta | None = None,
    now: datetime | str | None = None,
) -> dict[str, Any]:
    """A slate of ``k`` items for ``user_id`` from the online store only.

    ``max_age`` is the freshness limit for the user's cached candidates (default: the
    ``user_candidates`` view ttl, 2 days); the pair table row uses its own view ttl. ``now``
    is the reference time for ages: the wall clock by default, a datetime, or ``"watermark"``
    (`nearline_clock`, for replayed data). Returns ``{user_id, k, slate: [{position, item_id,
    title, category, source, label, score, cluster}], fallbacks: [reason], sources: {...},
    timings_ms: {online_reads, total}, n_online_reads}``.
    """
    from feature_repo import store as fs
    from feature_repo.schema import VIEWS

    t_start = time.perf_counter()
    read_s = 0.0
    n_reads = 0

    def read(view: str, ids: Sequence[str], age: timedelta | None = None) -> Any:
        nonlocal read_s, n_reads
        t = time.perf_counter()
        try:
            return _rows(fs.get_online(store, view, ids, max_age=age, now=now))
        finally:
            read_s += time.perf_counter() - t
            n_reads += 1

    if isinstance(now, str):
        if now != "watermark":
            raise ConfigError(f"bad reference time {now!r}", "pass a datetime or 'watermark'")
        now = nearline_clock(store)
    user_id = str(user_id).strip()
    if not user_id:
        raise ConfigError("user id is empty", "pass --user USER_ID")
    layout, _ = slot_layout(k, n_serendipity, n_explore)
    limit = max_age if max_age is not None else VIEWS["user_candidates"].ttl
    if limit is not None and limit.total_seconds() <= 0:
        raise ConfigError(f"max age {limit} is not positive", "use e.g. 2d or 12h")

    fallbacks: list[str] = []
    sources: dict[str, Any] = {}
    row = read("user_candidates", [user_id], limit)[0]
    sources["user_candidates"] = _row_info(row)
    if row["status"] == "missing":
        known = read("user_stats", [user_id])[0]["status"] != "missing"
        if not known:
            raise SerenRecommendError(
                f"unknown user {user_id!r}: no user_candidates or user_stats row in the online store",
                "check the id; for a new user run `seren features materialize` then `seren nearline run`",
            )
        raise SerenRecommendError(
            f"user {user_id!r} has no cached recommendations in the online store (no popularity source "
            "to fall back to online)",
            "run `seren nearline run` to refresh this user's candidates",
        )

    main = list(dict.fromkeys(_ids(row["main_item_ids"])))
    if not main:
        raise SerenRecommendError(
            f"user {user_id!r} has an empty cached main slate",
            "run `seren nearline run` (the sequence recommender found no items for this user)",
        )
    stale = row["status"] == "stale"
    age_text = f"age {fmt_age(float(row['age_s']))} > max {fmt_age(limit.total_seconds())}" if stale and limit else ""
    if stale:
        fallbacks.append(f"main: cached slate stale ({age_text}); served anyway, no fresher source online")

    n_ser_slots = layout.count("serendipity")
    n_exp_slots = layout.count("exploration")

    ser_reason: str | None = None
    ser_cands: list[tuple[str, float]] = []
    if n_ser_slots:
        ids, scores = _ids(row["candidate_item_ids"]), _floats(row["candidate_scores"])
        if stale:
            ser_reason = f"serendipity: candidates stale ({age_text})"
        elif len(ids) != len(scores):
            ser_reason = f"serendipity: malformed cached row ({len(ids)} ids, {len(scores)} scores)"
        else:
            ser_cands = list(zip(ids, scores, strict=True))

    explore: list[str] = []
    novel: list[str] = []
    novel_scores: list[float] = []
    pair = "" if row["cluster_pair"] is None else str(row["cluster_pair"])
    exp_reason: str | None = None
    if n_exp_slots:
        explore = _ids(row["explore_item_ids"])
        if stale:
            exp_reason = f"exploration: candidates stale ({age_text})"
        elif not pair:
            exp_reason = "exploration: user has fewer than two interest clusters (no cluster pair)"
        elif not explore:
            exp_reason = f"exploration: no cached exploration items for pair {pair}"
        else:
            nrow = read("novel_interests", [pair])[0]
            sources["novel_interests"] = {"cluster_pair": pair, **_row_info(nrow)}
            novel, novel_scores = _ids(nrow["novel_clusters"]), _floats(nrow["novel_scores"])
            if nrow["status"] == "missing":
                exp_reason = f"exploration: no novel-interest row for pair {pair}"
            elif nrow["status"] == "stale":
                ttl = VIEWS["novel_interests"].ttl
                exp_reason = (
                    f"exploration: novel-interest row for pair {pair} stale "
                    f"(age {fmt_age(float(nrow['age_s']))} > max {fmt_age(ttl.total_seconds()) if ttl else '?'})"
                )
            elif not novel:
                exp_reason = f"exploration: pair {pair} has no novel clusters"
    cached = CachedCandidates(
        main=main,
        serendipity=[] if ser_reason else ser_cands,
        explore=[] if exp_reason else explore,
        cluster_label=",".join(novel[:2]) if novel else None,
        serendipity_reason=ser_reason,
        explore_reason=exp_reason,
    )
    slots, slate_fallbacks = build_slate(cached, k, n_serendipity, n_explore)
    fallbacks += slate_fallbacks

    meta = read("item_features", [s["item_id"] for s in slots]) if slots else []
    engaged: tuple[set[str], bool] | None = None
    if any(s["source"] == "serendipity" for s in slots):
        prow = read("user_profile", [user_id])[0]
        engaged = engaged_categories("" if prow["status"] == "missing" else str(prow["profile_text"] or ""))
    missing_meta = []
    for i, s in enumerate(slots):
        s["position"] = i + 1
        m = meta[i]
        ok = m["status"] != "missing"
        s["title"] = str(m["title"]) if ok and m["title"] is not None else None
        s["category"] = str(m["category"]) if ok and m["category"] is not None else None
        s["outside_history"] = None
        if not ok:
            missing_meta.append(s["item_id"])
        if s["source"] == "serendipity":
            s["outside_history"] = outside_history(s["category"], engaged)
            where = {True: ", outside history", False: ", in history", None: ""}[s["outside_history"]]
            s["label"] = f"serendipity({s['score']:.2f}{where})"
        elif s["source"] == "exploration":
            s["label"] = f"exploration({s['cluster']})"
        else:
            s["label"] = "main"
    if missing_meta:
        fallbacks.append(f"item_features: no row for {', '.join(missing_meta)} (shown without title)")

    keys = ("position", "item_id", "title", "category", "source", "label", "score", "cluster", "outside_history")
    return {
        "user_id": user_id,
        "k": k,
        "slate": [{key: s[key] for key in keys} for s in slots],
        "fallbacks": fallbacks,
        "cluster_pair": pair or None,
        "novel_clusters": [{"cluster": c, "score": round(v, 4)} for c, v in zip(novel, novel_scores, strict=False)],
        "sources": sources,
        "reference_time": None if now is None else _iso(now),
        "n_online_reads": n_reads,
        "timings_ms": {
            "online_reads": round(read_s * 1000, 3),
            "total": round((time.perf_counter() - t_start) * 1000, 3),
        },
    }


def format_slate(result: dict[str, Any]) -> str:
    """Plain-text slate (CLI and demo): one line per position, then the fallback reasons."""
    rows = [
        (str(s["position"]), s["item_id"], s["label"], s["title"] or "-", s["category"] or "-") for s in result["slate"]
    ]
    head = ("#", "item", "source", "title", "category")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    pair = f", cluster pair {result['cluster_pair']}" if result.get("cluster_pair") else ""
    lines = [f"user {result['user_id']} (k={result['k']}{pair})", fmt.format(*head).rstrip()]
    lines += [fmt.format(*r).rstrip() for r in rows]
    lines += [f"fallback: {reason}" for reason in result["fallbacks"]]
    return "\n".join(lines)


def pick_users(store: Any, n: int = 3) -> list[str]:
    """Up to ``n`` users for a demo, from the offline copy of the nearline pushes (the request
    path never scans; a demo may): users with both serendipity candidates and a cluster pair
    first, then the rest, by user id so the choice is reproducible."""
    import pandas as pd

    from feature_repo import store as fs
    from feature_repo.schema import offline_table_path

    path = offline_table_path(fs.data_dir_of(store), "user_candidates")
    df = pd.read_parquet(path) if path.exists() else None
    if df is None or df.empty:
        raise SerenRecommendError(
            f"no nearline output in {path}", "run `seren nearline run` (it pushes user_candidates online and offline)"
        )
    df = df.sort_values("event_timestamp").drop_duplicates("user_id", keep="last")
    has_cands = df["candidate_item_ids"].map(lambda v: v is not None and len(v) > 0)
    rich = has_cands & df["cluster_pair"].fillna("").ne("")
    df = df.assign(_rank=(~rich).astype(int)).sort_values(["_rank", "user_id"])
    return df["user_id"].head(n).tolist()


def sample_slates(
    store: Any,
    users: Sequence[str] | None = None,
    n: int = 3,
    k: int = 10,
    now: datetime | str | None = None,
) -> str:
    """Formatted slates for ``users`` (default: ``pick_users(store, n)``), for the demo summary;
    a user that cannot be served shows its one-line error instead. On replayed data pass
    ``now="watermark"`` (see `nearline_clock`)."""
    from seren.errors import SerenError

    if isinstance(now, str):
        now = nearline_clock(store) if now == "watermark" else now
    blocks = []
    for u in users if users is not None else pick_users(store, n):
        try:
            blocks.append(format_slate(recommend(store, u, k=k, now=now)))
        except SerenError as exc:
            blocks.append(f"user {u}: error: {exc.line()}")
    return "\n\n".join(blocks)
