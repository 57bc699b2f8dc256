"""Ranking and beyond-accuracy metrics for serendipity recommendation.

Definitions follow RecBole / Microsoft Recommenders so numbers are comparable with published
work: binary-relevance Hit/Recall/NDCG/MRR over a ranked list; novelty as self-information of
item popularity; diversity as intra-list dissimilarity; serendipity as unexpectedness (one minus
the mean similarity to the user's history) times relevance; catalogue coverage; personalization as
one minus the mean pairwise cosine similarity of users' recommendation sets.

Per-list functions take one user's ranked item ids; the `*_users` helpers and `rank_by_score`
average them over users. Every function returns a plain float.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

Recommendations = Mapping[str, Sequence[str]]


def _topk(ranked: Sequence[str], k: int) -> Sequence[str]:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return ranked[:k]


def hit_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1.0 when any relevant item is in the top k."""
    return float(any(i in relevant for i in _topk(ranked, k)))


def precision_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Relevant items in the top k divided by k (RecBole: by k, not by the list length)."""
    return sum(i in relevant for i in _topk(ranked, k)) / k


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant items found in the top k (0 when there are none to find)."""
    if not relevant:
        return 0.0
    return sum(i in relevant for i in _topk(ranked, k)) / len(relevant)


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str] | Mapping[str, float], k: int) -> float:
    """Normalised DCG with gain rel / log2(rank + 1); binary relevance for a set, graded for a mapping."""
    gains = relevant if isinstance(relevant, Mapping) else dict.fromkeys(relevant, 1.0)
    dcg = sum(gains.get(i, 0.0) / math.log2(r + 2) for r, i in enumerate(_topk(ranked, k)))
    ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def mrr(ranked: Sequence[str], relevant: Collection[str]) -> float:
    """Reciprocal rank of the first relevant item (0 when none is ranked)."""
    for r, i in enumerate(ranked):
        if i in relevant:
            return 1.0 / (r + 1)
    return 0.0


def rank_by_score(
    df: pd.DataFrame,
    ks: Iterable[int] = (1, 3),
    user_col: str = "user_id",
    item_col: str = "item_id",
    label_col: str = "label",
    score_col: str = "score",
    seed: int = 0,
) -> dict[str, float]:
    """Hit@k, NDCG@k, Recall@k and MRR averaged over users that have at least one positive.

    Each user's candidates are ranked by score; ties are broken by a seeded shuffle so a constant
    scorer gets chance-level numbers instead of whatever order the rows happened to arrive in.
    """
    ks = list(ks)
    rng = np.random.default_rng(seed)
    shuffled = df.iloc[rng.permutation(len(df))]
    ranked = shuffled.sort_values([user_col, score_col], ascending=[True, False], kind="stable")
    sums: dict[str, float] = {}
    n_users = 0
    for _, g in ranked.groupby(user_col, sort=False):
        relevant = set(g.loc[g[label_col] > 0, item_col])
        if not relevant:
            continue
        n_users += 1
        items = list(g[item_col])
        row = {"mrr": mrr(items, relevant)}
        for k in ks:
            row[f"hit@{k}"] = hit_at_k(items, relevant, k)
            row[f"ndcg@{k}"] = ndcg_at_k(items, relevant, k)
            row[f"recall@{k}"] = recall_at_k(items, relevant, k)
        for key, v in row.items():
            sums[key] = sums.get(key, 0.0) + v
    out = {key: v / n_users for key, v in sums.items()} if n_users else {}
    out["ranked_users"] = float(n_users)
    return out


# ---------------------------------------------------------------- beyond accuracy


def novelty(recommendations: Recommendations, item_counts: Mapping[str, int], n_users: int) -> float:
    """Mean self-information -log2(p(i)) of recommended items, p(i) = users who consumed i / all users.

    Items never consumed count as consumed once (maximal but finite novelty).
    """
    if n_users < 1:
        raise ValueError("n_users must be >= 1")
    values = [-math.log2(max(item_counts.get(i, 0), 1) / n_users) for items in recommendations.values() for i in items]
    return float(np.mean(values)) if values else 0.0


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b) / (na * nb) if na > 0 and nb > 0 else 0.0


def cosine_similarity_fn(item_features: Mapping[str, Sequence[float]]) -> Callable[[str, str], float]:
    """Item-item cosine similarity from feature vectors (unknown items are similar to nothing)."""
    vecs = {i: np.asarray(v, dtype=float) for i, v in item_features.items()}

    def sim(i: str, j: str) -> float:
        if i not in vecs or j not in vecs:
            return 0.0
        return _cosine(vecs[i], vecs[j])

    return sim


def category_similarity_fn(categories: Mapping[str, str]) -> Callable[[str, str], float]:
    """Cosine similarity of "Top/Sub" category paths as one-hot [top, top/sub] vectors.

    Same sub-category -> 1, same top category only -> 0.5, otherwise 0.
    """

    def sim(i: str, j: str) -> float:
        ci, cj = categories.get(i), categories.get(j)
        if ci is None or cj is None:
            return 0.0
        if ci == cj:
            return 1.0
        return 0.5 if ci.split("/")[0] == cj.split("/")[0] else 0.0

    return sim


def intra_list_diversity(items: Sequence[str], similarity: Callable[[str, str], float]) -> float:
    """1 - mean pairwise similarity within one list (0 for lists shorter than 2)."""
    pairs = list(combinations(items, 2))
    if not pairs:
        return 0.0
    return 1.0 - float(np.mean([similarity(i, j) for i, j in pairs]))


def diversity(recommendations: Recommendations, similarity: Callable[[str, str], float]) -> float:
    """Intra-list diversity averaged over users with at least two recommendations."""
    values = [intra_list_diversity(items, similarity) for items in recommendations.values() if len(items) >= 2]
    return float(np.mean(values)) if values else 0.0


def unexpectedness(item: str, history: Sequence[str], similarity: Callable[[str, str], float]) -> float:
    """1 - mean similarity of an item to the user's history (1 for an empty history)."""
    if not history:
        return 1.0
    return 1.0 - float(np.mean([similarity(item, h) for h in history]))


def user_serendipity(
    items: Sequence[str],
    history: Sequence[str],
    relevance: Mapping[str, float] | Collection[str],
    similarity: Callable[[str, str], float],
) -> float:
    """Mean over the list of unexpectedness(item) x relevance(item) (Recommenders' definition)."""
    if not items:
        return 0.0
    rel = relevance if isinstance(relevance, Mapping) else dict.fromkeys(relevance, 1.0)
    return float(np.mean([unexpectedness(i, history, similarity) * rel.get(i, 0.0) for i in items]))


def serendipity(
    recommendations: Recommendations,
    histories: Mapping[str, Sequence[str]],
    relevance: Mapping[str, Mapping[str, float] | Collection[str]],
    similarity: Callable[[str, str], float],
) -> float:
    """User serendipity averaged over users with recommendations."""
    values = [
        user_serendipity(items, histories.get(u, ()), relevance.get(u, ()), similarity)
        for u, items in recommendations.items()
        if items
    ]
    return float(np.mean(values)) if values else 0.0


def coverage(recommendations: Recommendations, catalog: Collection[str]) -> float:
    """Catalogue coverage: distinct recommended catalogue items / catalogue size."""
    if not catalog:
        raise ValueError("catalog is empty")
    cat = set(catalog)
    shown = {i for items in recommendations.values() for i in items if i in cat}
    return len(shown) / len(cat)


def distributional_coverage(recommendations: Recommendations) -> float:
    """Shannon entropy (bits) of how often each item is recommended (Recommenders)."""
    counts = pd.Series([i for items in recommendations.values() for i in items]).value_counts()
    if counts.empty:
        return 0.0
    p = counts.to_numpy(dtype=float) / counts.sum()
    return float(-(p * np.log2(p)).sum())


def personalization(recommendations: Recommendations) -> float:
    """1 - mean pairwise cosine similarity of users' binary recommendation vectors.

    1 means no two users share an item; 0 means everyone gets the same set.
    """
    users = [u for u, items in recommendations.items() if items]
    if len(users) < 2:
        return 0.0
    vocab = {i: n for n, i in enumerate(sorted({i for u in users for i in recommendations[u]}))}
    m = np.zeros((len(users), len(vocab)))
    for r, u in enumerate(users):
        for i in recommendations[u]:
            m[r, vocab[i]] = 1.0
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    sim = m @ m.T
    upper = sim[np.triu_indices(len(users), k=1)]
    return float(1.0 - upper.mean())


# ------------------------------------------------------------------ the one flattening helper (KFP Metrics)


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested metrics -> the flat numeric scalars a KFP Metrics artifact can log: seren's one naming scheme.

    Metric names stay as written (`hit@1`, `ndcg@3`, `roc_auc`); nesting is joined with '.' (and a
    trainer's 'rewards/chosen' becomes 'rewards.chosen'), e.g. {"sft_ipo": {"hit@1": 0.5}} ->
    {"sft_ipo.hit@1": 0.5}. Bools become 0/1; None, NaN, text and lists are left out.
    """
    out: dict[str, float] = {}
    for k, v in metrics.items():
        key = f"{prefix}{k}".replace("/", ".")
        if isinstance(v, Mapping):
            out.update(flatten_metrics(v, key + "."))
        elif isinstance(v, bool | int | float | np.integer | np.floating) and v == v:  # NaN != NaN
            out[key] = float(v)
    return out
