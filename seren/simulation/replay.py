"""Replay of the arms on real logs: a time split of MovieLens (ml-latest-small format).

Every arm recommends k items per user from the ratings before the split, through the same slate
function (`seren.recommend.build_slate`). The user's ratings after the split decide hits, and
only rated items can count (an unrated recommendation may have been liked: the replay cannot
tell, so absolute hit rates are lower bounds and favour what users were shown anyway).

* hit: a slate item the user rated >= 4 after the split;
* serendipitous hit: a hit on an item none of whose genres appears in the user's pre-split
  history;
* coverage: distinct genres in the user's slate.

Main recommender: genre affinity (share of the user's pre-split positives per genre) x the item's
smoothed positive rate x log(1 + its number of ratings), from every user's pre-split ratings
(per-user split: other users' histories may end later than this user's split). Serendipity candidates: items none of whose genres the user has rated,
judged by the unexpectedness x relevance heuristic (every candidate is fully unexpected here, so
it ranks by relevance, the smoothed positive rate). Exploration: the genre that co-occurs most
with the genres of the user's last two positives, among genres the user has not rated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren import recommend as rec
from seren.errors import DataError
from seren.simulation import stats

REPLAY_ARMS = ("control", "random_unexpected", "serendipity", "exploration", "seren")
SLOTS = {
    "control": (0, 0),
    "random_unexpected": (2, 1),
    "serendipity": (2, 0),
    "exploration": (0, 1),
    "seren": (2, 1),
}


def load_ratings(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    p = Path(path)
    if not (p / "ratings.csv").is_file() or not (p / "movies.csv").is_file():
        raise DataError(f"no ratings.csv/movies.csv in {p}", "pass an ml-latest-small style folder")
    return pd.read_csv(p / "ratings.csv"), pd.read_csv(p / "movies.csv")


def replay(
    path: str | Path,
    k: int = 10,
    split_quantile: float = 0.8,
    min_history: int = 10,
    n_candidates: int = 30,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """Run every replay arm on a global time split; per-arm means with 95% intervals over users."""
    ratings, movies = load_ratings(path)
    movies = movies[movies["genres"] != "(no genres listed)"].reset_index(drop=True)
    genres = sorted({g for gs in movies["genres"] for g in gs.split("|")})
    gi = {g: i for i, g in enumerate(genres)}
    n_items, G = len(movies), len(genres)
    item_g = np.zeros((n_items, G), dtype=bool)
    for i, gs in enumerate(movies["genres"]):
        item_g[i, [gi[g] for g in gs.split("|")]] = True
    ratings = ratings[ratings["movieId"].isin(movies["movieId"])].copy()
    ratings["item"] = pd.Index(movies["movieId"]).get_indexer(ratings["movieId"])
    # per-user time split: each user's first `split_quantile` of ratings (by time) is the history
    ratings = ratings.sort_values(["userId", "timestamp", "movieId"], kind="stable")
    rank = ratings.groupby("userId").cumcount()
    size = ratings.groupby("userId")["movieId"].transform("size")
    early = (rank < np.floor(split_quantile * size)).to_numpy()
    before, after = ratings[early], ratings[~early]
    counts = before.groupby("userId").size()
    users = sorted(set(counts[counts >= min_history].index) & set(after["userId"]))
    if not users:
        raise DataError("no user has history before and ratings after the split", "lower min_history")
    U = len(users)
    uix = pd.Index(users)
    b = before[before["userId"].isin(users)]
    bu, bi = uix.get_indexer(b["userId"]), b["item"].to_numpy()
    bpos = b["rating"].to_numpy() >= 4
    rated = np.zeros((U, n_items), dtype=bool)
    rated[bu, bi] = True
    hist_g = (rated.astype(np.int32) @ item_g.astype(np.int32)) > 0  # U x G genres rated before
    pos_g = np.zeros((U, G))
    np.add.at(pos_g, bu[bpos], item_g[bi[bpos]].astype(float))
    # item quality from every user's pre-split ratings
    n_r = np.bincount(before["item"], minlength=n_items).astype(float)
    n_p = np.bincount(before["item"][before["rating"] >= 4], minlength=n_items).astype(float)
    # smoothed positive rate x log popularity (unrated-before items are not retrievable)
    quality = (n_p + 1.0) / (n_r + 2.0) * np.log1p(n_r)
    aff = (pos_g + 0.05) / (pos_g.sum(axis=1, keepdims=True) + 0.05 * G)
    main_score = (aff @ item_g.T.astype(float)) / np.maximum(item_g.sum(axis=1), 1) * quality
    main_score = np.where(rated | (quality <= 0), -np.inf, main_score)
    outside = ~((hist_g.astype(np.int32) @ item_g.T.astype(np.int32)) > 0) & ~rated & (quality > 0)  # U x I

    from seren.simulation.arms import _top_n

    main = _top_n(main_score, k + 4)
    ser_pool = _top_n(np.where(outside, quality[None, :], -np.inf), n_candidates)
    rng = np.random.default_rng(seed)
    rand = _top_n(np.where(outside, rng.random((U, n_items)), -np.inf), 3)
    # exploration: genre co-occurring most with the genres of the last two positives, not yet rated
    cooc = item_g.T.astype(float) @ item_g.astype(float)
    np.fill_diagonal(cooc, 0.0)
    last = b[bpos].sort_values("timestamp").groupby("userId")["item"].apply(lambda s: list(s)[-2:])
    nov_score = np.zeros((U, G))
    for u, items in last.items():
        nov_score[uix.get_loc(u)] = cooc[item_g[items].any(axis=0)].sum(axis=0)
    nov_score = np.where(hist_g, -np.inf, nov_score)
    novel = np.argmax(nov_score, axis=1)
    has_novel = np.isfinite(nov_score[np.arange(U), novel]) & (nov_score[np.arange(U), novel] > 0)
    explore = _top_n(np.where(item_g[:, novel].T & has_novel[:, None], main_score, -np.inf), 4)

    a = after[after["userId"].isin(users)]
    liked = np.zeros((U, n_items), dtype=bool)
    liked[uix.get_indexer(a["userId"]), a["item"].to_numpy()] = a["rating"].to_numpy() >= 4
    rated_after = np.zeros((U, n_items), dtype=bool)
    rated_after[uix.get_indexer(a["userId"]), a["item"].to_numpy()] = True

    per_user: dict[str, dict[str, np.ndarray]] = {}
    catalogue: dict[str, float] = {}
    for arm in REPLAY_ARMS:
        n_ser, n_exp = SLOTS[arm]
        hits, ser_hits, cover, rated_n = (np.zeros(U) for _ in range(4))
        shown: set[int] = set()
        for u in range(U):
            m = [int(i) for i in main[u] if i >= 0]
            if arm == "random_unexpected":
                rr = [int(i) for i in rand[u] if i >= 0]
                cached = rec.CachedCandidates(main=m, serendipity=[(i, 1.0) for i in rr[:2]], explore=rr[2:])
            else:
                sp = [int(i) for i in ser_pool[u] if i >= 0]
                cached = rec.CachedCandidates(
                    main=m,
                    serendipity=[(i, float(quality[i])) for i in sp],
                    explore=[int(i) for i in explore[u] if i >= 0],
                    cluster_label=genres[novel[u]] if has_novel[u] else None,
                )
            slots, _ = rec.build_slate(cached, k, n_ser, n_exp)
            ids = np.array([s["item_id"] for s in slots], dtype=np.int64)
            shown.update(ids.tolist())
            h = liked[u, ids]
            hits[u] = h.sum()
            ser_hits[u] = (h & outside[u, ids]).sum()
            rated_n[u] = rated_after[u, ids].sum()
            cover[u] = item_g[ids].any(axis=0).sum()
        per_user[arm] = {"hits": hits, "serendipitous_hits": ser_hits, "genre_coverage": cover, "rated": rated_n}
        catalogue[arm] = len(shown) / n_items
    out_arms = {arm: {m: stats.mean_ci(v, n_boot, seed) for m, v in pu.items()} for arm, pu in per_user.items()}
    ones = np.ones(U)
    lifts = {
        arm: {
            m: {
                **stats.paired_lift((per_user[arm][m], ones), (per_user["control"][m], ones), n_boot, seed),
                **stats.paired_diff(per_user[arm][m], per_user["control"][m], n_boot, seed),
            }
            for m in ("hits", "serendipitous_hits")
        }
        for arm in REPLAY_ARMS
        if arm != "control"
    }
    for row in lifts.values():  # a relative lift over a zero base is undefined: None, see diff
        for cell in row.values():
            for key in ("lift", "ci_low", "ci_high"):
                if not np.isfinite(cell[key]):
                    cell[key] = None
    return {
        "dataset": str(path),
        "note": f"per-user time split: each user's first {split_quantile:.0%} of ratings (by time) is the history, "
        f"the rest decides hits; {U} users with >= {min_history} ratings before and >= 1 after; only rated items "
        "can be hits",
        "n_users": U,
        "n_items": n_items,
        "k": k,
        "metrics": ["hits", "serendipitous_hits", "genre_coverage", "rated"],
        "arms": out_arms,
        "lift_vs_control": lifts,
        "catalogue_coverage": catalogue,
        "judge": "unexpectedness x relevance heuristic (all candidates fully unexpected: ranks by smoothed positive rate)",
        "main_recommender": "genre affinity x smoothed item positive rate x log(1 + ratings)",
    }
