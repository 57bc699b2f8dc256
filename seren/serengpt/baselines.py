"""Non-LLM baselines of the ablation: item popularity and the unexpectedness x relevance heuristic,
both from behaviour before the profile cutoff, never the judged (user, item) pair itself."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from seren import metrics as M
from seren.data.dataset import Dataset
from seren.data.schema import is_positive


def _history(ds: Dataset, candidates: pd.DataFrame, as_of: Any | None) -> pd.DataFrame:
    """Behaviour the baselines may use: before the cutoff, never the judged pairs themselves."""
    inter = ds.interactions
    if as_of is not None:
        inter = inter[inter["timestamp"] < pd.Timestamp(as_of)]
    judged = pd.MultiIndex.from_frame(candidates[["user_id", "item_id"]].astype(str))
    keys = pd.MultiIndex.from_frame(inter[["user_id", "item_id"]].astype(str))
    inter = inter[~keys.isin(judged)]
    return inter.assign(pos=is_positive(inter).to_numpy())


def _by_cutoff(candidates: pd.DataFrame, as_of: Any | None) -> list[tuple[Any | None, np.ndarray]]:
    """Groups of candidate rows that share a cutoff: explicit `as_of`, else each row's profile snapshot."""
    if as_of is not None or "as_of" not in candidates.columns or candidates["as_of"].isna().all():
        return [(as_of, np.arange(len(candidates)))]
    cut = pd.to_datetime(candidates["as_of"], utc=True)
    return [(c, np.flatnonzero((cut == c).to_numpy())) for c in cut.dropna().unique()] + (
        [(None, np.flatnonzero(cut.isna().to_numpy()))] if cut.isna().any() else []
    )


def popularity_scores(ds: Dataset, candidates: pd.DataFrame, as_of: Any | None = None) -> np.ndarray:
    """Positive engagements per item before the cutoff (what a popularity recommender ranks by), in [0, 1]."""
    candidates = candidates.reset_index(drop=True)
    out = np.zeros(len(candidates))
    for cut, rows in _by_cutoff(candidates, as_of):
        hist = _history(ds, candidates, cut)
        counts = hist[hist["pos"]].groupby("item_id").size()
        out[rows] = candidates["item_id"].iloc[rows].astype(str).map(counts).fillna(0.0).to_numpy(dtype=float)
    return out / out.max() if out.max() > 0 else out


def heuristic_scores(ds: Dataset, candidates: pd.DataFrame, as_of: Any | None = None) -> np.ndarray:
    """Recommenders' serendipity: unexpectedness(item | user history) x relevance(item).

    Unexpectedness is 1 - mean category similarity ("Top/Sub": 1 same sub, 0.5 same top) to the
    items the user engaged with before the cutoff; relevance is the item's Laplace-smoothed
    positive rate among exposures to it before the cutoff (other users only: judged pairs are
    excluded).
    """
    candidates = candidates.reset_index(drop=True)
    cats = ds.items.set_index(ds.items["item_id"].astype(str))["category"].astype(str).to_dict()
    sim = M.category_similarity_fn(cats)
    out = np.zeros(len(candidates))
    for cut, rows in _by_cutoff(candidates, as_of):
        hist = _history(ds, candidates, cut)
        g = hist.groupby("item_id")["pos"].agg(["sum", "count"])
        rel = ((g["sum"] + 1.0) / (g["count"] + 2.0)).to_dict()
        positives = hist[hist["pos"]].groupby("user_id")["item_id"].agg(list).to_dict()
        sub = candidates.iloc[rows]
        for r, u, i in zip(rows, sub["user_id"].astype(str), sub["item_id"].astype(str), strict=True):
            out[r] = M.unexpectedness(i, positives.get(u, []), sim) * rel.get(i, 0.5)
    return out
