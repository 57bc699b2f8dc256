"""Recommender-quality inputs from judgments, and how Evidently's recsys metrics relate to `seren.metrics`.

The judged candidates of each user, ranked by SerenGPT score, are the serendipity slate; the
items' category paths ("Top/Sub") become one-hot features [top, top/sub], whose cosine similarity
is exactly `seren.metrics.category_similarity_fn` (1 same sub-category, 0.5 same top, 0 otherwise).

Evidently 0.7.23 (legacy implementations behind the new metrics) vs `seren.metrics`, for a user
u with top-k list L_u (|L_u| = n_u), training history H_u (a list, duplicates kept) and item
similarity s = 1 - cosine distance of the feature vectors:

* Novelty: Evidently = mean over users of mean_{i in L_u} -log2(users(i) / n_train_users), items
  never seen in training dropped; `seren.metrics.novelty` = mean over all recommended items (not
  per user first) with unseen items counted as seen once. Equal when every list has the same
  length and every recommended item was seen in training.
* Diversity: Evidently ILD_u = sum over unordered pairs of (1 - s) / n_u; seren = mean over pairs
  of (1 - s). So Evidently = (n_u - 1) / 2 x seren per user (equal for k = 3).
* Serendipity: Evidently counts only users with >= 1 relevant item in L_u who appear in the
  training data: E_u = 1 - sum_{j in L_u relevant} mean_{h in H_u} s(h, j) (can go negative);
  seren (binary relevance) S_u = (1/n_u) sum_{j relevant} (1 - mean_h s(h, j)), averaged over
  all users with a list. Hence E_u = n_u x S_u - (m_u - 1) with m_u relevant items in L_u
  (`evidently_serendipity` below computes it from seren's per-user values).
* Personalization: Evidently = 1 - (sum_i c_i^2 - n k) / (k n (n - 1)) with c_i the times item i is
  recommended, i.e. 1 - mean over ordered user pairs of |L_u & L_v| / k; seren = 1 - mean over
  pairs of cosine(binary vectors) = |L_u & L_v| / sqrt(n_u n_v). Equal when every list has k items.
* Popularity bias (no seren counterpart): ARP = mean over users of the mean training popularity
  (users who interacted) of L_u; coverage = |recommended & trained items| / |trained items|
  (= `seren.metrics.coverage` with the trained items as catalogue); Gini of recommendation counts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from monitoring.judgments import FEEDBACK
from seren.data.schema import is_positive
from seren.metrics import user_serendipity


def item_feature_table(items: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """item_id + one-hot [top category, full category path] columns (their cosine = category similarity)."""
    cat = items["category"].astype(str)
    top = cat.str.split("/").str[0]
    onehot = pd.concat(
        [
            pd.get_dummies(top, prefix="top", prefix_sep="=", dtype=float),
            pd.get_dummies(cat, prefix="cat", prefix_sep="="),
        ],
        axis=1,
    ).astype(float)
    onehot.insert(0, "item_id", items["item_id"].astype(str).to_numpy())
    return onehot, [c for c in onehot.columns if c != "item_id"]


def ranked_lists(judgments: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Each user's judged candidates (latest judgment per item) ranked by score, with target = feedback
    (unknown feedback counts as not relevant) and the item features."""
    latest = judgments.sort_values("event_timestamp").drop_duplicates(["user_id", "item_id"], keep="last")
    target = latest[FEEDBACK].fillna(0).astype(float) if FEEDBACK in latest else pd.Series(0.0, index=latest.index)
    recs = pd.DataFrame(
        {
            "user_id": latest["user_id"].astype(str),
            "item_id": latest["item_id"].astype(str),
            "prediction": latest["score"].astype(float),
            "target": target.to_numpy(),
        }
    )
    recs = recs.sort_values(["user_id", "prediction"], ascending=[True, False], kind="stable")
    return recs.merge(features, on="item_id", how="inner").reset_index(drop=True)


def slate_length(frames: Sequence[pd.DataFrame], k: int) -> int:
    """The k to evaluate at: at most `k`, and at most the median slate length of every frame, because
    Evidently's personalization assumes that every user has exactly k items (users with fewer are then
    left out by `full_slates`)."""
    medians = [int(f.groupby("user_id").size().median()) for f in frames if not f.empty]
    return max(1, min([k, *medians]))


def full_slates(recs: pd.DataFrame, k: int) -> pd.DataFrame:
    """The top k of every user with at least k ranked items."""
    sizes = recs.groupby("user_id")["item_id"].transform("size")
    return recs[sizes >= k].groupby("user_id", sort=False).head(k).reset_index(drop=True)


def training_frame(interactions: pd.DataFrame, features: pd.DataFrame, before: pd.Timestamp | None) -> pd.DataFrame:
    """Positive interactions before `before` (what popularity and histories are measured on), with features."""
    pos = interactions[is_positive(interactions)]
    if before is not None:
        pos = pos[pos["timestamp"] < before]
    train = pd.DataFrame({"user_id": pos["user_id"].astype(str), "item_id": pos["item_id"].astype(str)})
    return train.merge(features, on="item_id", how="inner").reset_index(drop=True)


def evidently_serendipity(
    recommendations: Mapping[str, Sequence[str]],
    histories: Mapping[str, Sequence[str]],
    relevance: Mapping[str, Collection[str]],
    similarity: Callable[[str, str], float],
) -> float:
    """Evidently's serendipity from `seren.metrics.user_serendipity`: mean over users with a history and
    m_u >= 1 relevant recommended items of n_u x S_u - (m_u - 1) (see the module docstring)."""
    values = []
    for u, items in recommendations.items():
        rel = set(relevance.get(u, ()))
        m = sum(i in rel for i in items)
        if not items or m == 0 or not histories.get(u):
            continue
        s = user_serendipity(items, histories[u], rel, similarity)
        values.append(len(items) * s - (m - 1))
    return float(np.mean(values)) if values else float("nan")
