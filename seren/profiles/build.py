"""Cognition profiles (SERAL stage 1): long behaviour histories compressed into short text.

A profile has three granularities — static statistics, short-term intent (the last window of
positive events) and long-term interests (stable across time windows, with drift) — rendered as
a few lines that must fit a token budget of the base model's tokenizer, so the prompt stays cheap
no matter how long the history is. Everything is computed with grouped pandas/numpy operations
(thousands of users in seconds); an optional text backend may rewrite the short/long-term part
as one sentence, with the deterministic lines as the fallback.

Only events strictly before `as_of` are used, so labeling and evaluation can build profiles that
do not contain the events they judge.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from seren.data.dataset import Dataset
from seren.data.schema import is_positive
from seren.errors import DataError
from seren.llm.relation import make_fields
from seren.profiles.text import category_top, count_tokens

log = logging.getLogger(__name__)

LOW_RATING = 3.0  # explicit ratings below this count as a negative signal
STOPWORDS = frozenset(
    "a an and are as at be by for from has have in into is it its of on or that the this to was were will with "
    "your you our their new best great item product edition".split()
)
_WORD = re.compile(r"[a-z][a-z\-']{3,}")


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


# Line kinds: (display order, trim priority — lower is kept longer).
# The engaged-subcategory line comes first: whether an item is *outside* the history is exactly
# what a serendipity judgment needs.
LINES = {
    "activity": (0, 4),
    "top": (1, 1),
    "subcats": (2, 0),
    "stable": (3, 3),
    "recent": (4, 2),
    "summary": (4, 2),
    "keywords": (5, 5),
    "price": (6, 6),
    "genres": (2, 1.5),
    "titles": (5, 2.5),
    "cold": (0, 0),
}


def _as_utc(ts: datetime | str | pd.Timestamp | None) -> pd.Timestamp | None:
    if ts is None:
        return None
    try:
        t = pd.Timestamp(ts)
    except (ValueError, TypeError):
        raise DataError(f"as_of {ts!r} is not a timestamp", "pass an ISO date such as 2024-03-01T00:00:00Z") from None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _events(ds: Dataset, as_of: pd.Timestamp | pd.Series | None, cfg: ProfileConfig | None = None) -> pd.DataFrame:
    inter = ds.interactions
    if isinstance(as_of, pd.Series):  # per-user cutoffs: users without one are left out
        inter = inter[inter["user_id"].isin(as_of.index)]
        inter = inter[inter["timestamp"] < inter["user_id"].map(as_of)]
    elif as_of is not None:
        inter = inter[inter["timestamp"] < as_of]
    items = ds.items[["item_id", "title", "category"] + (["price"] if "price" in ds.items.columns else [])].copy()
    items["category"] = items["category"].fillna("Unknown").astype(str)
    items["top"] = category_top(items["category"])
    if items["top"].nunique() == 1:  # one top level (e.g. "Movies/<genre>"): rank the subcategories
        items["top"] = items["category"]
    ev = inter[["user_id", "item_id", "event", "rating", "timestamp"]].merge(items, on="item_id", how="left")
    ev["category"] = ev["category"].fillna("Unknown")
    ev["top"] = ev["top"].fillna("Unknown")
    ev["pos"] = is_positive(ev).to_numpy()
    if cfg is not None and cfg.positive_rating is not None:
        ev["pos"] |= (ev["rating"].fillna(-1.0) >= cfg.positive_rating).to_numpy()
    ev["neg"] = (ev["event"] == "skip") | (ev["rating"].fillna(99.0) < LOW_RATING)
    ev["neg"] &= ~ev["pos"]
    return ev.sort_values(["user_id", "timestamp", "item_id"], kind="stable").reset_index(drop=True)


def _ranked(counts: pd.DataFrame, key: str, value: str) -> pd.DataFrame:
    """Sort (user, key) counts by value desc then key asc, with a per-user rank."""
    out = counts.sort_values(["user_id", value, key], ascending=[True, False, True], kind="stable")
    out["rank"] = out.groupby("user_id", sort=False).cumcount()
    return out


def _join_list(df: pd.DataFrame, col: str, users: pd.Index) -> pd.Series:
    """Per-user lists of `col` in row order (rows of one user must be contiguous); [] when absent."""
    keys = df["user_id"].to_numpy()
    vals = df[col].tolist()
    cuts = (np.flatnonzero(keys[1:] != keys[:-1]) + 1).tolist() if len(keys) else []
    starts, ends = [0, *cuts], [*cuts, len(keys)]
    got = {keys[a]: vals[a:b] for a, b in zip(starts, ends, strict=True) if b > a}
    return pd.Series([got.get(u, []) for u in users], index=users, dtype=object)


def _static(ev: pd.DataFrame, ds: Dataset, ref: pd.Series, cfg: ProfileConfig) -> pd.DataFrame:
    g = ev.groupby("user_id", sort=True)
    st = pd.DataFrame(
        {
            "n_events": g.size(),
            "n_positive": g["pos"].sum(),
            "n_negative": g["neg"].sum(),
            "first": g["timestamp"].min(),
            "last": g["timestamp"].max(),
        }
    )
    st["active_days"] = ((st["last"] - st["first"]).dt.total_seconds() / 86400).round().astype(int) + 1
    st["recency_days"] = ((ref.reindex(st.index) - st["last"]).dt.total_seconds() / 86400).clip(lower=0)
    users = st.index

    pos = ev[ev["pos"]]
    cat = pos.groupby(["user_id", "top"], sort=True).size().rename("n").reset_index()
    cat["share"] = cat["n"] / cat.groupby("user_id")["n"].transform("sum")
    cat = _ranked(cat, "top", "share")
    ent = cat.assign(h=-cat["share"] * np.log2(cat["share"])).groupby("user_id")["h"].sum()
    st["category_entropy"] = ent.reindex(users).fillna(0.0)
    top = cat[(cat["rank"] < cfg.top_k) & ((cat["share"] >= cfg.min_share) | (cat["rank"] == 0))]
    st["top_categories"] = _join_list(top, "top", users)
    st["top_shares"] = _join_list(top, "share", users)
    st["exploration_rate"] = (1.0 - top.groupby("user_id")["share"].sum()).reindex(users).clip(lower=0.0)
    st.loc[st["n_positive"] == 0, "exploration_rate"] = np.nan

    # Every subcategory with a positive is part of the history ("interests"); the share of
    # positives that opened a new subcategory measures how readily the user explores.
    sub = pos.groupby(["user_id", "category"], sort=True).size().rename("n").reset_index()
    sub = _ranked(sub, "category", "n")
    st["interests"] = _join_list(sub, "category", users)
    shown = sub[sub["rank"] < cfg.n_engaged]
    st["engaged"] = _join_list(shown.assign(s=shown["category"] + " " + shown["n"].astype(str)), "s", users)
    st["engaged_names"] = _join_list(shown, "category", users)
    st["engaged_n"] = _join_list(shown, "n", users)
    st["n_engaged_hidden"] = (sub.groupby("user_id").size().reindex(users).fillna(0) - cfg.n_engaged).clip(lower=0)
    opened = pos.groupby(["user_id", "category"], sort=False).cumcount() == 0
    st["novelty_rate"] = (opened.groupby(pos["user_id"]).sum() / st["n_positive"]).reindex(users)

    # Price band: median price of positives against the catalogue's quartiles.
    st["price_median"] = np.nan
    st["price_band"] = ""
    if "price" in ev.columns and ds.items["price"].notna().any():
        q = ds.items["price"].dropna().quantile([0.25, 0.5, 0.75]).to_numpy()
        med = pos.groupby("user_id")["price"].median().reindex(users)
        band = np.select(
            [med < q[0], med < q[1], med < q[2], med >= q[2]], ["budget", "mid", "upper-mid", "premium"], ""
        )
        st["price_median"] = med
        st["price_band"] = band
    return st


def _item_words(items: pd.DataFrame) -> pd.DataFrame:
    """(item_id, w) keyword candidates: distinct title/text words that are neither stopwords nor
    category names nor boilerplate (in more than 10% of the catalogue, and more than 2 items)."""
    text = (items["title"].fillna("") + " " + items["text"].fillna("")).str.lower()
    words = pd.DataFrame({"item_id": items["item_id"].to_numpy(), "w": text.str.findall(_WORD).to_numpy()})
    words = words.explode("w").dropna(subset=["w"]).drop_duplicates()
    cat_words = set(re.findall(r"[a-z]+", " ".join(items["category"].astype(str).unique()).lower()))
    n_items = words.groupby("w")["item_id"].transform("size")
    return words[(n_items <= max(2.0, 0.1 * len(items))) & ~words["w"].isin(STOPWORDS | cat_words)]


def _short_term(ev: pd.DataFrame, ds: Dataset, users: pd.Index, cfg: ProfileConfig) -> pd.DataFrame:
    pos = ev[ev["pos"]]
    recent = pos[pos.groupby("user_id", sort=False).cumcount(ascending=False) < cfg.short_n]
    sub = recent.groupby(["user_id", "category"], sort=True).size().rename("n").reset_index()
    sub = _ranked(sub, "category", "n")
    out = pd.DataFrame(index=users)
    out["recent_intent"] = _join_list(sub[sub["rank"] < cfg.n_subcats], "category", users)

    # Keywords: words shared by at least two recent items (a theme, not one title's noise).
    words = recent[["user_id", "item_id"]].merge(_item_words(ds.items), on="item_id")
    kw = words.groupby(["user_id", "w"], sort=True).size().rename("n").reset_index()
    kw = _ranked(kw[kw["n"] >= 2], "w", "n")
    out["recent_keywords"] = _join_list(kw[kw["rank"] < cfg.n_keywords], "w", users)
    return out


def _long_term(ev: pd.DataFrame, users: pd.Index, t0: pd.Timestamp, ref: pd.Series, cfg: ProfileConfig) -> pd.DataFrame:
    """Subcategory interests per global time window: stable ones, drift (JS) first vs last window."""
    out = pd.DataFrame(index=users)
    empty = pd.Series([[] for _ in range(len(users))], index=users, dtype=object)
    out["stable_interests"], out["emerging"], out["fading"] = empty, empty.copy(), empty.copy()
    out["drift"] = np.nan
    out["n_windows_active"] = 0
    pos = ev[ev["pos"]]
    if pos.empty:
        return out
    span = (pos["user_id"].map(ref) - t0).dt.total_seconds().clip(lower=1.0)
    win = ((pos["timestamp"] - t0).dt.total_seconds() / span * cfg.n_windows).astype(int).clip(0, cfg.n_windows - 1)
    c = pos.assign(w=win).groupby(["user_id", "w", "category"], sort=True).size().rename("n").reset_index()
    c["share"] = c["n"] / c.groupby(["user_id", "w"])["n"].transform("sum")
    wins = c.groupby("user_id")["w"].agg(["min", "max", "nunique"])
    c = c.join(wins, on="user_id")
    c["present"] = (c["share"] >= cfg.min_share).astype(int)
    per = c.groupby(["user_id", "category"], sort=True).agg(
        n_present=("present", "sum"),
        share_sum=("share", "sum"),
        first_seen=("w", "min"),
    )
    per = per.join(wins, on="user_id")
    per["mean_share"] = per["share_sum"] / per["nunique"]
    first = c[c["w"] == c["min"]].set_index(["user_id", "category"])["share"]
    last = c[c["w"] == c["max"]].set_index(["user_id", "category"])["share"]
    per["p_first"] = first.reindex(per.index).fillna(0.0)
    per["p_last"] = last.reindex(per.index).fillna(0.0)
    per = per.reset_index().sort_values(
        ["user_id", "mean_share", "category"], ascending=[True, False, True], kind="stable"
    )
    multi = per["nunique"] >= 2
    need = np.maximum(1, np.ceil(per["nunique"] * 2 / 3))
    lists = {
        "stable_interests": per[per["n_present"] >= need],
        "emerging": per[multi & (per["p_last"] >= cfg.min_share) & (per["first_seen"] == per["max"])],
        "fading": per[multi & (per["p_first"] >= cfg.min_share) & (per["p_last"] == 0)],
    }
    for col, sel in lists.items():
        sel = sel[sel.groupby("user_id", sort=False).cumcount() < cfg.n_subcats]
        out[col] = _join_list(sel, "category", users)
    # Jensen-Shannon divergence (base 2, in [0, 1]) between the first and last active window.
    m = 0.5 * (per["p_first"] + per["p_last"])
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(per["p_first"] > 0, per["p_first"] * np.log2(per["p_first"] / m), 0.0)
        term += np.where(per["p_last"] > 0, per["p_last"] * np.log2(per["p_last"] / m), 0.0)
    js = pd.Series(0.5 * term, index=per.index).groupby(per["user_id"]).sum()
    out["drift"] = js.where(wins["nunique"] >= 2).reindex(users)
    out["n_windows_active"] = wins["nunique"].reindex(users).fillna(0).astype(int)
    return out


def _movie_signal(ev: pd.DataFrame, ds: Dataset, users: pd.Index, cfg: ProfileConfig) -> pd.DataFrame:
    """Optional "Liked genres" (all genres, not only the category's first) and "Liked titles" lists."""
    out = pd.DataFrame(index=users)
    pos = ev[ev["pos"]]
    if cfg.genre_line and "genres" in ds.items.columns:
        g = pos[["user_id", "item_id"]].merge(ds.items[["item_id", "genres"]], on="item_id", how="left")
        g["genre"] = g["genres"].fillna("").astype(str).str.split("|")
        g = g.explode("genre")
        g = g[g["genre"].str.len().gt(0) & (g["genre"] != "(no genres listed)")]
        c = _ranked(g.groupby(["user_id", "genre"], sort=True).size().rename("n").reset_index(), "genre", "n")
        out["liked_genres"] = _join_list(c.assign(s=c["genre"] + " " + c["n"].astype(str)), "s", users)
    if cfg.n_titles > 0:
        latest = pos[pos.groupby("user_id", sort=False).cumcount(ascending=False) < cfg.n_titles]
        latest = latest.iloc[::-1]  # most recent first
        latest = latest.sort_values("user_id", kind="stable")
        out["liked_titles"] = _join_list(latest.assign(t=latest["title"].fillna("").astype(str)), "t", users)
    return out


def _fmt_list(v: Sequence[str]) -> str:
    return ", ".join(v)


def relation_fields(st: pd.DataFrame) -> list[str]:
    """Per user, the structured fields of the prompt's relation line (seren.llm.relation) as JSON:
    the listed engaged subcategories with their positives, how many more exist, the top categories
    with their shares. Built from the profile's columns, so a change of the prose template (or a
    line dropped by the token budget) cannot change the relation line."""
    out = []

    def lst(v: Any) -> list:
        return v if isinstance(v, list) else []

    for names, n_eng, more, tops, shares in zip(
        st["engaged_names"],
        st["engaged_n"],
        st["n_engaged_hidden"],
        st["top_categories"],
        st["top_shares"],
        strict=True,
    ):
        fields = make_fields(
            list(zip(lst(names), lst(n_eng), strict=True)),
            0 if pd.isna(more) else int(more),
            list(zip(lst(tops), lst(shares), strict=True)),
        )
        out.append(json.dumps(fields, sort_keys=True))
    return out


def _render_lines(st: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, line kind) with its text; empty lines are dropped."""
    days = st["recency_days"].round().astype(int).astype(str)
    parts: dict[str, pd.Series] = {}
    parts["activity"] = (
        "Activity: "
        + st["n_events"].astype(str)
        + " events ("
        + st["n_positive"].astype(str)
        + " positive, "
        + st["n_negative"].astype(str)
        + " negative) over "
        + st["active_days"].astype(str)
        + " days; last active "
        + days
        + " days ago."
    )
    top = [
        ", ".join(f"{c} {round(s * 100)}%" for c, s in zip(cs, ss, strict=True))
        for cs, ss in zip(st["top_categories"], st["top_shares"], strict=True)
    ]
    parts["top"] = pd.Series(
        [
            f"Top interests: {t} (entropy {h:.2f} bits; explores {e:.0%} outside)." if t else "Top interests: none yet."
            for t, h, e in zip(top, st["category_entropy"], st["exploration_rate"].fillna(0.0), strict=True)
        ],
        index=st.index,
    )
    parts["subcats"] = pd.Series(
        [
            f"Engaged subcategories: {_fmt_list(v)}{f' (+{int(k)} more)' if k else ''}; {r:.0%} of positives opened a new one."
            if v
            else ""
            for v, k, r in zip(st["engaged"], st["n_engaged_hidden"], st["novelty_rate"].fillna(0.0), strict=True)
        ],
        index=st.index,
    )
    stable = []
    for s, d, em, fa in zip(st["stable_interests"], st["drift"], st["emerging"], st["fading"], strict=True):
        if not s and not em:
            stable.append("")
            continue
        line = f"Long-term interests: {_fmt_list(s) or 'none stable'}"
        if not math.isnan(d):
            line += f"; drift {d:.2f}"
        if em:
            line += f"; emerging {_fmt_list(em)}"
        if fa:
            line += f"; fading {_fmt_list(fa)}"
        stable.append(line + ".")
    parts["stable"] = pd.Series(stable, index=st.index)
    parts["recent"] = st["recent_intent"].map(lambda v: f"Recent intent: {_fmt_list(v)}." if v else "")
    parts["keywords"] = st["recent_keywords"].map(lambda v: f"Recent keywords: {_fmt_list(v)}." if v else "")
    parts["price"] = pd.Series(
        [
            f"Price band: {b} (median {m:.2f})." if b else ""
            for b, m in zip(st["price_band"], st["price_median"], strict=True)
        ],
        index=st.index,
    )
    if "liked_genres" in st.columns:
        parts["genres"] = st["liked_genres"].map(lambda v: f"Liked genres: {_fmt_list(v)}." if v else "")
    if "liked_titles" in st.columns:
        parts["titles"] = st["liked_titles"].map(lambda v: f"Liked titles: {'; '.join(v)}." if v else "")
    frames = [pd.DataFrame({"user_id": st.index, "kind": k, "text": s.to_numpy()}) for k, s in parts.items()]
    lines = pd.concat(frames, ignore_index=True)
    return lines[lines["text"] != ""]


def _fit(lines: pd.DataFrame, tokenizer: Any, budget: int) -> tuple[pd.Series, pd.Series, int]:
    """Keep each user's highest-priority lines that fit `budget` tokens; never exceed it.

    Line costs are counted once per distinct line (+1 for the newline) to choose the lines; the
    joined text is then re-counted exactly and lines are dropped (or the last one cut) until it fits.
    """
    lines = lines.copy()
    lines["order"] = lines["kind"].map(lambda k: LINES[k][0])
    lines["prio"] = lines["kind"].map(lambda k: LINES[k][1])
    uniq = pd.unique(lines["text"])
    cost = pd.Series(count_tokens(tokenizer, uniq) + 1, index=uniq)
    lines["cost"] = lines["text"].map(cost).to_numpy()
    lines = lines.sort_values(["user_id", "prio"], kind="stable")
    lines["keep"] = lines.groupby("user_id", sort=False)["cost"].cumsum() <= budget + 1
    lines.loc[lines.groupby("user_id", sort=False).cumcount() == 0, "keep"] = True  # cut below if too long
    n_trimmed = int((~lines["keep"]).sum())

    kept = lines[lines["keep"]]

    def join(df: pd.DataFrame) -> pd.Series:
        return df.sort_values(["user_id", "order"], kind="stable").groupby("user_id", sort=True)["text"].agg("\n".join)

    text = join(kept)
    ntok = pd.Series(count_tokens(tokenizer, text.tolist()), index=text.index)
    while (over := ntok[ntok > budget]).size:
        k = kept[kept["user_id"].isin(over.index)]
        multi = k.groupby("user_id")["text"].transform("size") > 1
        # Drop the lowest-priority line of users that still have more than one line.
        drop = k[multi].sort_values(["user_id", "prio"], kind="stable").groupby("user_id").tail(1).index
        kept = kept.drop(drop)
        n_trimmed += len(drop)
        single = over.index.difference(k[multi]["user_id"].unique())
        fixed = join(kept[kept["user_id"].isin(over.index)])
        for u in single:  # a single line longer than the budget: cut it by tokens
            fixed[u] = _truncate(tokenizer, fixed[u], budget)
        text.update(fixed)
        ntok.update(pd.Series(count_tokens(tokenizer, fixed.tolist()), index=fixed.index))
    return text, ntok.astype(int), n_trimmed


def _truncate(tokenizer: Any, text: str, budget: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    n = min(len(ids), budget)
    while n > 0:
        cut = tokenizer.decode(ids[:n], skip_special_tokens=True).rstrip()
        if len(tokenizer(cut, add_special_tokens=False)["input_ids"]) <= budget:
            return cut
        n -= 1
    return ""


def _raw_tokens(ev: pd.DataFrame, ds: Dataset, tokenizer: Any) -> pd.Series:
    """Tokens of the naive prompt: one `event: title — text` line per event, summed per user.

    Counted per item and per event word (plus one newline per line) instead of per line: exact
    for byte-level BPE tokenizers, where a newline and the "event: " prefix never merge across.
    """
    items = ds.items[ds.items["item_id"].isin(ev["item_id"].unique())]
    body = items["title"].fillna("").astype(str) + " — " + items["text"].fillna("").astype(str)
    item_tok = pd.Series(count_tokens(tokenizer, body.tolist()), index=items["item_id"].to_numpy())
    events = pd.unique(ev["event"])
    ev_tok = pd.Series(count_tokens(tokenizer, [f"{e}:" for e in events]) + 1, index=events)  # +1: newline
    per_event = ev["item_id"].map(item_tok).fillna(0).to_numpy() + ev["event"].map(ev_tok).to_numpy()
    return pd.Series(per_event, index=ev.index).groupby(ev["user_id"]).sum()


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
