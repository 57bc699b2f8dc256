"""Cognition profiles (SERAL stage 1): long behaviour histories compressed into short text.

A profile has three granularities — static statistics, short-term intent (the last window of
positive events) and long-term interests (stable across time windows, with drift) — rendered as
a few lines that must fit a token budget of the base model's tokenizer, so the prompt stays cheap
no matter how long the history is. Everything is computed with grouped pandas/numpy operations
(thousands of users in seconds); an optional text backend may rewrite the short/long-term part
as one sentence, with the deterministic lines as the fallback.

Only events strictly before `as_of` are used, so labeling and evaluation can build profiles that
do not contain the events they judge.

Signals live in `signals`, rendering and budget trimming in `render`; this module holds the
configuration, the optional LLM summary and the entry points.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from seren.data.dataset import Dataset
from seren.errors import DataError
from seren.profiles.render import _fit, _raw_tokens, _render_lines, relation_fields
from seren.profiles.signals import LOW_RATING, _events, _long_term, _movie_signal, _short_term, _static

__all__ = ["LOW_RATING", "ProfileConfig", "build_profile_snapshots", "build_profiles", "profile_metrics"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProfileConfig:
    """Knobs of the profile; defaults fit a 160-token budget."""

    short_n: int = 10  # positive events in the short-term window
    n_windows: int = 3  # long-term time windows
    top_k: int = 3  # top categories listed
    min_share: float = 0.1  # a category below this share of positives is not an interest
    n_subcats: int = 3  # subcategories listed per short/long-term line
    n_engaged: int = 10  # engaged subcategories listed (all of them go into the `interests` column)
    n_keywords: int = 4
    # Richer item signal (off by default: existing prompts stay byte-identical).
    positive_rating: float | None = None  # ratings >= this count as positive (None: the schema's 4.0)
    genre_line: bool = False  # "Liked genres": every genre of the positives (items' `genres` column)
    n_titles: int = 0  # "Liked titles": the latest N positive titles


def _as_utc(ts: datetime | str | pd.Timestamp | None) -> pd.Timestamp | None:
    if ts is None:
        return None
    try:
        t = pd.Timestamp(ts)
    except (ValueError, TypeError):
        raise DataError(f"as_of {ts!r} is not a timestamp", "pass an ISO date such as 2024-03-01T00:00:00Z") from None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


SUMMARY_PROMPT = (
    "Summarise this shopper's interests and current intent in one short sentence (at most 30 words). "
    "Mention category names exactly as given.\n{facts}\nSummary:"
)


def _clean_summary(text: str) -> str:
    text = (text or "").strip().split("\n")[0].strip().strip('"').strip()
    if text.lower().startswith("summary:"):
        text = text[8:].strip()
    return text[:400]


def _summarise(lines: pd.DataFrame, backend: Any) -> tuple[pd.DataFrame, dict[str, int]]:
    """Replace each user's short/long-term lines by one backend sentence; keep them on failure."""
    parts = lines[lines["kind"].isin(["stable", "recent", "keywords"])]
    stats = {"llm_calls": 0, "llm_failures": 0}
    replaced: list[str] = []
    summaries: list[dict[str, str]] = []
    first_error = ""
    for user, grp in parts.groupby("user_id", sort=True):
        stats["llm_calls"] += 1
        try:
            out = _clean_summary(
                backend.complete(SUMMARY_PROMPT.format(facts="\n".join(grp["text"])), max_new_tokens=64)
            )
            if len(out) < 8:
                raise ValueError(f"empty or too short summary {out!r}")
        except Exception as exc:  # any backend failure falls back to the deterministic lines
            stats["llm_failures"] += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
            continue
        replaced.append(user)
        summaries.append({"user_id": user, "kind": "summary", "text": f"Summary: {out}"})
    if stats["llm_failures"]:
        log.warning(
            "profile summaries: %d of %d backend calls failed; kept deterministic lines (first error: %s)",
            stats["llm_failures"],
            stats["llm_calls"],
            first_error,
        )
    drop = lines["user_id"].isin(replaced) & lines["kind"].isin(["stable", "recent", "keywords"])
    lines = pd.concat([lines[~drop], pd.DataFrame(summaries, columns=["user_id", "kind", "text"])], ignore_index=True)
    return lines, stats


def build_profiles(
    ds: Dataset,
    tokenizer: Any,
    as_of: datetime | str | pd.Timestamp | pd.Series | dict[str, Any] | None = None,
    token_budget: int = 160,
    backend: Any | None = None,
    users: list[str] | None = None,
    config: ProfileConfig | None = None,
) -> pd.DataFrame:
    """One profile row per user from events strictly before `as_of`; metrics in `df.attrs["metrics"]`.

    `as_of` is one time for everyone, or a per-user mapping (Series/dict user_id -> time; users
    without an entry are left out). `users` restricts (and may extend, for users known in
    `ds.users` but without history before `as_of`, who get a cold-start profile) the set of
    users; unknown ids raise DataError.
    """
    t_start = time.perf_counter()
    cfg = config or ProfileConfig()
    if token_budget < 8:
        raise DataError(f"token budget {token_budget} is too small", "use a budget of at least 8 tokens (default 160)")
    per_user = isinstance(as_of, pd.Series | dict)
    if per_user:
        cut_map = pd.Series(as_of, dtype=object)
        cut_map.index = cut_map.index.astype(str)
        cut_map = pd.Series([_as_utc(v) for v in cut_map], index=cut_map.index, dtype="datetime64[ns, UTC]").dropna()
        if cut_map.empty:
            raise DataError("per-user as_of mapping is empty", "pass at least one user's cutoff")
        cutoff: pd.Timestamp | None = cut_map.min()
        ev = _events(ds, cut_map, cfg)
    else:
        cutoff = _as_utc(as_of)  # type: ignore[arg-type]
        ev = _events(ds, cutoff, cfg)
    t0 = ds.interactions["timestamp"].min()
    everyone = pd.Index(ds.interactions["user_id"].unique())
    if per_user:
        ref = cut_map
    else:
        ref_t = cutoff if cutoff is not None else ds.interactions["timestamp"].max()
        ref = pd.Series(ref_t, index=everyone, dtype="datetime64[ns, UTC]")

    known = set(ds.interactions["user_id"].unique())
    if ds.users is not None:
        known |= set(ds.users["user_id"].astype(str))
    if users is not None:
        users = [str(u) for u in users]
        unknown = [u for u in dict.fromkeys(users) if u not in known]
        if unknown:
            raise DataError(
                f"{len(unknown)} unknown user id(s) (e.g. {', '.join(map(repr, unknown[:3]))})",
                "pass user ids that appear in the dataset",
            )
        ev = ev[ev["user_id"].isin(users)]
        if per_user:
            users = [u for u in users if u in cut_map.index]
    if ev.empty and not users:
        raise DataError(
            f"no interactions before {cutoff.isoformat() if cutoff is not None else 'the end of the data'}",
            "choose a later as_of or a dataset with history",
        )

    st = _static(ev, ds, ref, cfg)
    st = st.join(_short_term(ev, ds, st.index, cfg)).join(_long_term(ev, st.index, t0, ref, cfg))
    st = st.join(_movie_signal(ev, ds, st.index, cfg))
    lines = _render_lines(st)
    llm = {"llm_calls": 0, "llm_failures": 0}
    if backend is not None and not lines.empty:
        lines, llm = _summarise(lines, backend)
    cold = sorted(set(users or []) - set(st.index))
    if cold:
        if per_user:
            when = [cut_map[u].date().isoformat() for u in cold]
        else:
            when = [cutoff.date().isoformat() if cutoff is not None else "now"] * len(cold)
        text_cold = [f"New user: no activity before {w}." for w in when]
        lines = pd.concat(
            [lines, pd.DataFrame({"user_id": cold, "kind": "cold", "text": text_cold})], ignore_index=True
        )
    text, ntok, n_trimmed = _fit(lines, tokenizer, token_budget)

    df = pd.DataFrame(
        {"user_id": text.index.astype(str), "profile_text": text.to_numpy(), "profile_tokens": ntok.to_numpy()}
    )
    raw = _raw_tokens(ev, ds, tokenizer).reindex(df["user_id"]).fillna(0).astype(int).to_numpy()
    df["raw_tokens"] = raw
    df["compression_ratio"] = df["raw_tokens"] / df["profile_tokens"].clip(lower=1)
    stc = st.reindex(df["user_id"])
    for col in (
        "top_categories",
        "interests",
        "stable_interests",
        "recent_intent",
        "recent_keywords",
        "emerging",
        "fading",
    ):
        df[col] = [v if isinstance(v, list) else [] for v in stc[col]]
    for col, fill in (
        ("category_entropy", 0.0),
        ("exploration_rate", np.nan),
        ("novelty_rate", np.nan),
        ("drift", np.nan),
        ("recency_days", np.nan),
        ("price_band", ""),
        ("n_events", 0),
        ("n_positive", 0),
    ):
        df[col] = stc[col].fillna(fill).to_numpy()
    df["n_events"] = df["n_events"].astype(int)
    df["n_positive"] = df["n_positive"].astype(int)
    df["summarised"] = df["profile_text"].str.contains("Summary: ", regex=False)
    df["relation_fields"] = relation_fields(stc)
    if per_user:
        df["as_of"] = df["user_id"].map(cut_map).astype("datetime64[ns, UTC]").to_numpy()
    else:
        df["as_of"] = pd.Series([cutoff] * len(df), dtype="datetime64[ns, UTC]")
    df = df.sort_values("user_id", kind="stable").reset_index(drop=True)
    metrics = profile_metrics(df, token_budget=token_budget)
    metrics.update(llm)
    metrics.update(
        {
            "lines_trimmed": n_trimmed,
            "as_of": cutoff.isoformat() if cutoff is not None else None,  # the earliest, when per user
            "as_of_per_user": per_user,
            "build_seconds": round(time.perf_counter() - t_start, 3),
        }
    )
    df.attrs["metrics"] = metrics
    df.attrs["as_of"] = metrics["as_of"]
    return df


def build_profile_snapshots(
    ds: Dataset,
    tokenizer: Any,
    cutoffs: Sequence[datetime | str | pd.Timestamp | pd.Series],
    **kw: Any,
) -> pd.DataFrame:
    """Profiles as of several cutoffs stacked (one row per user and cutoff, `as_of` says which).

    Each cutoff is one time or a per-user Series (see `labeling_cutoffs(per_user=True)`).
    Labeling uses each snapshot for the user's events up to their next cutoff, which multiplies
    the leak-free training examples a history yields.
    """
    if not len(cutoffs):
        raise DataError("no cutoffs given", "pass at least one as_of time")
    frames, llm = [], {"llm_calls": 0, "llm_failures": 0, "lines_trimmed": 0}
    for cut in cutoffs:
        try:
            df = build_profiles(ds, tokenizer, as_of=cut, **kw)
        except DataError as exc:
            if "no interactions before" in str(exc):
                continue  # an early cutoff with no history yet: later snapshots still count
            raise
        for k in llm:
            llm[k] += df.attrs["metrics"][k]
        frames.append(df)
    if not frames:
        raise DataError("no interactions before any cutoff", "choose later cutoffs")
    out = pd.concat(frames, ignore_index=True)
    # Per-user cutoffs of a short history can coincide: one profile per (user, as_of).
    out = out.drop_duplicates(["user_id", "as_of"]).sort_values(["as_of", "user_id"], kind="stable")
    out = out.reset_index(drop=True)
    metrics = profile_metrics(out, token_budget=kw.get("token_budget", 160)) | llm
    metrics |= {
        "as_of": out["as_of"].min().isoformat(),
        "as_of_per_user": any(f.attrs["metrics"]["as_of_per_user"] for f in frames),
        "n_snapshots": int(out.groupby("user_id").size().max()),
    }
    out.attrs["metrics"] = metrics
    out.attrs["as_of"] = metrics["as_of"]
    return out


def profile_metrics(df: pd.DataFrame, token_budget: int | None = None) -> dict[str, Any]:
    """Size statistics of a profile table: how much shorter than the raw history the prompt got."""
    prof = df["profile_tokens"].astype(float)
    raw = df["raw_tokens"].astype(float)
    has_hist = raw > 0
    out: dict[str, Any] = {
        "n_users": int(len(df)),
        "mean_profile_tokens": round(float(prof.mean()), 2) if len(df) else 0.0,
        "p95_profile_tokens": round(float(prof.quantile(0.95)), 2) if len(df) else 0.0,
        "max_profile_tokens": int(prof.max()) if len(df) else 0,
        "mean_raw_tokens": round(float(raw.mean()), 2) if len(df) else 0.0,
        # Ratio of totals over users with history (cold users have no raw history to compress).
        "compression_ratio": round(float(raw[has_hist].sum() / max(prof[has_hist].sum(), 1.0)), 3),
        "n_summarised": int(df["summarised"].sum()) if "summarised" in df.columns else 0,
    }
    if token_budget is not None:
        out["token_budget"] = int(token_budget)
    return out
