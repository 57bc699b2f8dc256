"""Feature tables computed from a canonical dataset, as point-in-time snapshots.

This module is plain pandas so the logic is testable without Feast; `feature_repo.store`
writes these tables as the offline sources of the `user_stats` and `item_features` views.
Every row carries ``event_timestamp`` (the snapshot time ``as_of``: the value is what was
knowable then, so historical joins never see the future) and ``created`` (when the row was
computed; Feast uses it to break ties between rows with the same event time).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from seren.data.dataset import Dataset
from seren.data.schema import is_positive
from seren.errors import DataError

TOP_K_CATEGORIES = 3
PRICE_BANDS = ("low", "mid", "high")

USER_STATS_COLUMNS = (
    "user_id",
    "n_events",
    "n_positive",
    "n_skips",
    "n_items",
    "positive_rate",
    "days_since_last_event",
    "active_days",
    "category_entropy",
    "top_categories",
    "price_band",
    "event_timestamp",
    "created",
)
ITEM_FEATURES_COLUMNS = (
    "item_id",
    "title",
    "text",
    "category",
    "top_category",
    "popularity",
    "price",
    "n_positive",
    "event_timestamp",
    "created",
)


def to_utc(ts: datetime | pd.Timestamp | str) -> pd.Timestamp:
    """Naive times are taken as UTC (the canonical schema stores UTC)."""
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _entropy(counts: pd.Series) -> float:
    p = counts.to_numpy(dtype=float)
    p = p[p > 0] / p.sum() if p.sum() > 0 else p[:0]
    return float(-(p * np.log(p)).sum()) if len(p) else 0.0


def _price_bands(prices: pd.Series) -> tuple[float, float] | None:
    """Catalogue price tertiles: a user's band is relative to what the catalogue offers."""
    p = prices.dropna()
    if p.empty:
        return None
    lo, hi = np.quantile(p.to_numpy(dtype=float), [1 / 3, 2 / 3])
    return float(lo), float(hi)


def _band(price: float, cuts: tuple[float, float] | None) -> str:
    if cuts is None or pd.isna(price):
        return "unknown"
    return PRICE_BANDS[0] if price <= cuts[0] else PRICE_BANDS[1] if price <= cuts[1] else PRICE_BANDS[2]


def user_stats(ds: Dataset, as_of: pd.Timestamp, created: pd.Timestamp) -> pd.DataFrame:
    """Behaviour statistics per user from events at or before ``as_of``.

    Interest features (category entropy, top categories, price band) use positive events only:
    impressions and skips say what the system showed, not what the user likes.
    """
    inter = ds.interactions[ds.interactions["timestamp"] <= as_of]
    if inter.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in USER_STATS_COLUMNS})
    items = ds.items.set_index("item_id")
    inter = inter.assign(
        positive=is_positive(inter).to_numpy(),
        category=inter["item_id"].map(items["category"]).fillna("unknown").to_numpy(),
        price=inter["item_id"].map(items["price"]).to_numpy(dtype=float),
        day=inter["timestamp"].dt.floor("D"),
    )
    g = inter.groupby("user_id", sort=True)
    out = pd.DataFrame(
        {
            "n_events": g.size(),
            "n_positive": g["positive"].sum(),
            "n_skips": g["event"].agg(lambda s: int((s == "skip").sum())),
            "n_items": g["item_id"].nunique(),
            "last": g["timestamp"].max(),
            "active_days": g["day"].nunique(),
        }
    )
    out["positive_rate"] = out["n_positive"] / out["n_events"]
    out["days_since_last_event"] = (as_of - out["last"]).dt.total_seconds() / 86400.0

    pos = inter[inter["positive"]]
    cat_counts = pos.groupby(["user_id", "category"]).size().rename("n").reset_index()
    cat_counts = cat_counts.sort_values(["user_id", "n", "category"], ascending=[True, False, True])
    out["category_entropy"] = cat_counts.groupby("user_id")["n"].agg(_entropy).reindex(out.index).fillna(0.0)
    top = cat_counts.groupby("user_id").head(TOP_K_CATEGORIES).groupby("user_id")["category"].agg(",".join)
    out["top_categories"] = top.reindex(out.index).fillna("")
    cuts = _price_bands(ds.items["price"]) if "price" in ds.items else None
    median_price = pos.groupby("user_id")["price"].median().reindex(out.index)
    out["price_band"] = [_band(p, cuts) for p in median_price]

    out = out.drop(columns=["last"]).reset_index()
    for c in ("n_events", "n_positive", "n_skips", "n_items", "active_days"):
        out[c] = out[c].astype("int64")
    for c in ("positive_rate", "days_since_last_event", "category_entropy"):
        out[c] = out[c].astype("float32")
    out["event_timestamp"] = as_of
    out["created"] = created
    return out[list(USER_STATS_COLUMNS)]


def item_features(ds: Dataset, as_of: pd.Timestamp, created: pd.Timestamp) -> pd.DataFrame:
    """Item metadata plus engagement observed up to ``as_of``.

    ``popularity`` is the catalogue's own value when it has one, else the item's share of
    positive events (so it is always in [0, 1] for observed data and never looks ahead).
    """
    items = ds.items
    inter = ds.interactions[ds.interactions["timestamp"] <= as_of]
    n_pos = inter[is_positive(inter)].groupby("item_id").size()
    n_pos = n_pos.reindex(items["item_id"]).fillna(0).astype("int64").to_numpy()
    observed = n_pos / max(int(n_pos.sum()), 1)
    given = items["popularity"].to_numpy(dtype=float) if "popularity" in items else np.full(len(items), np.nan)
    out = pd.DataFrame(
        {
            "item_id": items["item_id"].astype(str).to_numpy(),
            "title": items["title"].astype(str).to_numpy(),
            "text": items["text"].astype(str).to_numpy(),
            "category": items["category"].astype(str).to_numpy(),
            "top_category": items["category"].astype(str).str.split("/").str[0].to_numpy(),
            "popularity": np.where(np.isnan(given), observed, given).astype("float32"),
            "price": (items["price"].to_numpy(dtype=float) if "price" in items else np.full(len(items), np.nan)).astype(
                "float32"
            ),
            "n_positive": n_pos,
        }
    )
    out["event_timestamp"] = as_of
    out["created"] = created
    return out[list(ITEM_FEATURES_COLUMNS)]


def build_feature_tables(ds: Dataset, as_of: datetime | None = None) -> dict[str, pd.DataFrame]:
    """Snapshot of user and item features at ``as_of`` (default: the last event in the data)."""
    if ds.interactions is None or ds.interactions.empty:
        raise DataError("dataset has no interactions", "generate or import a dataset with events first")
    ts = pd.to_datetime(ds.interactions["timestamp"], utc=True)
    if not ts.equals(ds.interactions["timestamp"]):
        ds = Dataset(ds.interactions.assign(timestamp=ts), ds.items, ds.users, ds.labels, ds.meta)
    snap = to_utc(as_of) if as_of is not None else ts.max()
    created = pd.Timestamp(datetime.now(UTC))
    return {"user_stats": user_stats(ds, snap, created), "item_features": item_features(ds, snap, created)}
