"""Scoring a window's candidates: the (profile, item) rows SerenGPT reads, P(Yes) from Triton (one
request row per user on the packed ensemble, or per pair), and the top items per user."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from seren.errors import DataError

Progress = Callable[[Iterable[Any], int, str], Iterable[Any]]


def build_pairs(cands: pd.DataFrame, profiles: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
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
