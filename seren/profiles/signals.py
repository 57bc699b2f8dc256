"""Profile signals: per-user statistics computed with grouped pandas/numpy operations from the
events before a cutoff — static counts, short-term intent, long-term interests with drift, item
keywords, and the optional movie signals (genres, liked titles). `build` renders them as lines."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from seren.data.dataset import Dataset
from seren.data.schema import is_positive
from seren.profiles.text import category_top

if TYPE_CHECKING:
    from seren.profiles.build import ProfileConfig

LOW_RATING = 3.0  # explicit ratings below this count as a negative signal
STOPWORDS = frozenset(
    "a an and are as at be by for from has have in into is it its of on or that the this to was were will with "
    "your you our their new best great item product edition".split()
)
_WORD = re.compile(r"[a-z][a-z\-']{3,}")


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
