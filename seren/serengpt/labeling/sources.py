"""Label sources: behaviour (events after a profile snapshot's cutoff), the dataset's own human
labels, and a survey CSV with a 1-5 Likert serendipity column.

Each source yields rows of (user_id, item_id, as_of, label, confidence, rationale, detail), where
`as_of` is the profile snapshot whose window [cutoff_k, cutoff_k+1) holds the judged event, so no
label is about behaviour its prompt has already seen (see the package docstring).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren.data.dataset import Dataset
from seren.data.schema import is_positive
from seren.errors import ConfigError, DataError
from seren.profiles.build import LOW_RATING

# Confidence of a behaviour label by the strongest signal behind it.
POSITIVE_CONFIDENCE = {"purchase": 0.8, "like": 0.75, "rating": 0.75, "click": 0.6}
INSIDE_CONFIDENCE = 0.7
NEGATIVE_CONFIDENCE = {"rating": 0.65, "skip": 0.55}

KEY = ["user_id", "item_id", "as_of"]
_SOURCE_COLUMNS = [*KEY, "label", "confidence", "rationale", "detail"]


def _cutoffs(profiles: pd.DataFrame) -> pd.DatetimeIndex:
    """The profiles' snapshot cutoffs, ascending; refuses profiles without one (leakage)."""
    ts = profiles["as_of"] if "as_of" in profiles.columns else pd.Series([pd.NaT] * len(profiles))
    if len(ts) == 0 or ts.isna().any():
        raise ConfigError(
            "the profiles were built from the whole history, so the labeled events would leak into the prompts",
            "build them with a cutoff: `seren profiles build --label-frac 0.3` or build_profiles(as_of=...)",
        )
    return pd.DatetimeIndex(_utc_ns(ts).unique()).sort_values()


def _utc_ns(ts: pd.Series) -> pd.Series:
    """UTC nanosecond timestamps, whatever unit a parquet round trip left behind."""
    return pd.to_datetime(ts, utc=True).astype("datetime64[ns, UTC]")


def _window(df: pd.DataFrame, profiles: pd.DataFrame) -> pd.Series:
    """Per row of (user_id, timestamp): the as_of of the user's snapshot whose window
    [cutoff_k, cutoff_k+1) holds the time — NaT before the user's first cutoff, without a profile
    or without a time. Works for global and per-user cutoffs alike."""
    left = pd.DataFrame({"user_id": df["user_id"].astype(str), "t": _utc_ns(df["timestamp"])}, index=df.index)
    left = left.dropna(subset=["t"]).reset_index(names="_row").sort_values("t", kind="stable")
    right = profiles[["user_id", "as_of"]].drop_duplicates().copy()
    right["as_of"] = _utc_ns(right["as_of"])
    right = right.sort_values("as_of", kind="stable")
    m = pd.merge_asof(left, right, left_on="t", right_on="as_of", by="user_id", direction="backward")
    return m.set_index("_row")["as_of"].reindex(df.index)


def _latest(profiles: pd.DataFrame) -> pd.Series:
    """Each user's latest snapshot cutoff (for judgments without a time: surveys, undated labels)."""
    return _utc_ns(profiles["as_of"]).groupby(profiles["user_id"].astype(str)).max()


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=_SOURCE_COLUMNS)


def _interest_pairs(profiles: pd.DataFrame) -> pd.DataFrame:
    pairs = profiles[["user_id", "as_of", "interests"]].explode("interests").dropna(subset=["interests"])
    return pairs.rename(columns={"interests": "category"}).drop_duplicates()


def behaviour_labels(ds: Dataset, profiles: pd.DataFrame) -> pd.DataFrame:
    """Labels from engagement in each snapshot's window, relative to that snapshot's profile history."""
    _cutoffs(profiles)
    ev = ds.interactions[ds.interactions["user_id"].isin(profiles["user_id"])].copy()
    ev["as_of"] = _window(ev, profiles)
    ev = ev.dropna(subset=["as_of"]).merge(profiles[["user_id", "as_of"]], on=["user_id", "as_of"])
    if ev.empty:
        return _empty()
    ev = ev.merge(ds.items[["item_id", "category"]], on="item_id", how="left")
    ev["pos"] = is_positive(ev).to_numpy()
    ev["neg"] = ~ev["pos"] & ((ev["event"] == "skip") | (ev["rating"].fillna(99.0) < LOW_RATING))
    inside = ev[["user_id", "as_of", "category"]].merge(_interest_pairs(profiles), how="left", indicator=True)["_merge"]
    ev["inside"] = (inside == "both").to_numpy()
    ev["kind"] = np.where(ev["event"].isin(list(POSITIVE_CONFIDENCE)), ev["event"], "rating")
    ev["pos_conf"] = np.where(ev["pos"], ev["kind"].map(POSITIVE_CONFIDENCE).fillna(0.6), 0.0)
    ev["neg_conf"] = np.where(
        ev["neg"], np.where(ev["event"] == "skip", NEGATIVE_CONFIDENCE["skip"], NEGATIVE_CONFIDENCE["rating"]), 0.0
    )
    g = ev.groupby(KEY, sort=True).agg(
        pos=("pos", "any"),
        neg=("neg", "any"),
        inside=("inside", "first"),
        pos_conf=("pos_conf", "max"),
        neg_conf=("neg_conf", "max"),
    )
    g = g.reset_index()
    serendipitous = g["pos"] & ~g["inside"]
    expected = g["pos"] & g["inside"]
    rejected = ~g["pos"] & g["neg"] & ~g["inside"]
    g = g[serendipitous | expected | rejected].copy()
    g["label"] = (g["pos"] & ~g["inside"]).astype(int)
    g["confidence"] = np.select(
        [g["label"] == 1, g["pos"]], [g["pos_conf"], INSIDE_CONFIDENCE], default=g["neg_conf"]
    ).astype(float)
    g["detail"] = np.select(
        [g["label"] == 1, g["pos"]],
        ["positive outside profile", "positive inside profile (relevant, expected)"],
        default="skipped or low-rated unexpected item",
    )
    g["rationale"] = None
    return g[_SOURCE_COLUMNS].reset_index(drop=True)


def dataset_labels(ds: Dataset, profiles: pd.DataFrame) -> pd.DataFrame:
    """The dataset's own human / ground-truth judgments, each in the snapshot window of its timestamp
    (labels before the first cutoff are dropped; undated ones go to the latest snapshot)."""
    if ds.labels is None or ds.labels.empty:
        return _empty()
    _cutoffs(profiles)
    lab = ds.labels
    latest = lab["user_id"].astype(str).map(_latest(profiles))
    if "timestamp" in lab.columns:
        as_of = _window(lab, profiles).where(lab["timestamp"].notna(), latest)
    else:
        as_of = latest
    detail = lab["source"].astype(str) if "source" in lab.columns else pd.Series("dataset", index=lab.index)
    out = pd.DataFrame(
        {
            "user_id": lab["user_id"].astype(str).to_numpy(),
            "item_id": lab["item_id"].astype(str).to_numpy(),
            "as_of": as_of.to_numpy(),
            "label": lab["serendipitous"].astype(int).to_numpy(),
            "confidence": 1.0,
            "rationale": None,
            "detail": detail.to_numpy(),
        }
    )
    out = out.dropna(subset=["as_of"])
    out["as_of"] = _utc_ns(out["as_of"])
    return out.drop_duplicates(KEY, keep="first").reset_index(drop=True)


def _find_column(cols: list[str], wanted: tuple[str, ...]) -> str | None:
    low = {c.lower().strip(): c for c in cols}
    for w in wanted:
        if w in low:
            return low[w]
    for w in wanted:
        for lc, c in low.items():
            if w in lc:
                return c
    return None


def survey_labels(path: str | os.PathLike[str], ds: Dataset) -> pd.DataFrame:
    """Survey CSV (user_id, item_id, a 1-5 serendipity Likert column, optional comment) -> labels.

    Ratings of one pair are averaged; label = mean > 3, confidence = |mean - 3| / 2 (a neutral 3
    carries no information and is dropped).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"survey file {path} does not exist", "pass the path of a CSV with user_id, item_id, serendipity"
        )
    try:
        df = pd.read_csv(path, dtype={"user_id": str, "item_id": str})
    except Exception as exc:  # pandas raises several parser errors
        raise DataError(
            f"{path}: cannot read CSV ({type(exc).__name__})", "pass a comma-separated file with a header"
        ) from None
    cols = list(df.columns)
    likert = _find_column(cols, ("serendipity", "serendipitous", "serendip"))
    missing = [c for c in ("user_id", "item_id") if c not in cols] + ([] if likert else ["serendipity"])
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}", "add user_id, item_id and a 1-5 serendipity column"
        )
    if df.empty:
        raise DataError(f"{path}: survey has no rows", "pass a survey with at least one judgment")
    score = pd.to_numeric(df[likert], errors="coerce")
    bad = score.isna() | ~score.between(1, 5)
    if bad.any():
        raise DataError(
            f"{path}: {int(bad.sum())} row(s) with a {likert!r} value outside 1-5 (e.g. {df.loc[bad, likert].iloc[0]!r})",
            "use a Likert score from 1 (not at all) to 5 (very serendipitous)",
        )
    df["user_id"] = df["user_id"].astype(str).str.strip()
    df["item_id"] = df["item_id"].astype(str).str.strip()
    known_users = set(ds.interactions["user_id"]) | (set(ds.users["user_id"]) if ds.users is not None else set())
    for col, known in (("user_id", known_users), ("item_id", set(ds.items["item_id"]))):
        unknown = pd.unique(df.loc[~df[col].isin(known), col])
        if len(unknown):
            raise DataError(
                f"{path}: {len(unknown)} unknown {col}(s) (e.g. {', '.join(map(repr, unknown[:3]))})",
                f"use {col}s that exist in the dataset",
            )
    comment = _find_column([c for c in cols if c != likert], ("rationale", "comment", "reason", "why"))
    df["_score"] = score
    agg: dict[str, Any] = {"_score": ("_score", "mean"), "n": ("_score", "size")}
    if comment:
        agg["rationale"] = (
            comment,
            lambda s: next((str(x).strip() for x in s if isinstance(x, str) and x.strip()), None),
        )
    g = df.groupby(["user_id", "item_id"], sort=True).agg(**agg).reset_index()
    g = g[g["_score"] != 3.0]
    out = pd.DataFrame(
        {
            "user_id": g["user_id"],
            "item_id": g["item_id"],
            "label": (g["_score"] > 3).astype(int),
            "confidence": ((g["_score"] - 3).abs() / 2).round(4),
            "rationale": g["rationale"] if comment else None,
            "detail": "survey (n=" + g["n"].astype(str) + ")",
        }
    )
    return out.reset_index(drop=True)
