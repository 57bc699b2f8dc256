"""Serendipity candidates: a retrieval source outside the user's engaged categories.

The main and exploration slates are, by construction, what the user already likes or what the
novel-cluster table proposes; judging only those (as nearline first did) fills the serendipity
slots with items of categories the main slate already shows. This source retrieves what *can*
be a pleasant surprise, for the judge (SerenGPT) to choose from:

* **sibling long tail**: items of subcategories the user has never engaged with whose top
  category holds one they have (e.g. Books/Poetry for a Books/Sci-Fi reader), ranked by observed
  quality (smoothed positive rate, not raw popularity: a rarely shown good item ranks high), the
  best item of every subcategory before any second one;
* **unengaged clusters**: the best items of top categories the user has not engaged with at all
  (a share of the pool, so a world whose hidden interests are far from the visible ones is
  reachable too).

Pure numpy over index arrays, so the nearline job (per refreshed user) and the closed-loop
simulator (every user, every round) share one definition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

SIBLING_SHARE = 2 / 3  # of the pool: sibling long tail; the rest from unengaged top categories


def item_quality(exposures: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Laplace-smoothed positive rate per item: (positives + 1) / (exposures + 2)."""
    return (np.asarray(positives, dtype=float) + 1.0) / (np.asarray(exposures, dtype=float) + 2.0)


def serendipity_pool(
    engaged_sub: np.ndarray,
    sub_of: np.ndarray,
    top_of_sub: np.ndarray,
    quality: np.ndarray,
    exclude: np.ndarray | None = None,
    n: int = 30,
    sibling_share: float = SIBLING_SHARE,
) -> np.ndarray:
    """Candidate item indices (U x n, -1 padded) outside each user's engaged subcategories.

    engaged_sub: U x S bool (subcategories with a positive engagement); sub_of: item -> sub;
    top_of_sub: sub -> top; quality: item score to rank by (best first); exclude: U x I bool
    (items already consumed or otherwise not to retrieve)."""
    U, S = engaged_sub.shape
    n_top = int(top_of_sub.max()) + 1
    engaged_top = np.zeros((U, n_top), dtype=bool)
    for t in range(n_top):
        engaged_top[:, t] = engaged_sub[:, top_of_sub == t].any(axis=1)
    item_top = top_of_sub[sub_of]
    outside = ~engaged_sub[:, sub_of]  # U x I: item's subcategory not engaged
    sibling = outside & engaged_top[:, item_top]
    far = outside & ~engaged_top[:, item_top]
    if exclude is not None:
        sibling &= ~exclude
        far &= ~exclude
    n_sib = int(round(n * sibling_share))
    out = np.full((U, n), -1, dtype=np.int64)
    # best first, but one item per subcategory before any second one: the pool covers as many
    # unengaged subcategories as it can (which of them holds a hidden interest is unknown)
    by_q = np.argsort(-quality, kind="stable")
    rank_in_sub = np.empty(len(quality), dtype=np.int64)
    for s in np.unique(sub_of):
        members = by_q[sub_of[by_q] == s]
        rank_in_sub[members] = np.arange(len(members))
    order = np.lexsort((np.arange(len(quality)), -quality, rank_in_sub))
    sib_o, far_o = sibling[:, order], far[:, order]
    for u in range(U):
        s = order[sib_o[u]]
        f = order[far_o[u]]
        take_s = s[: max(n_sib, n - len(f))]
        take_f = f[: n - len(take_s)]
        picked = np.concatenate([take_s, take_f])[:n]
        out[u, : len(picked)] = picked
    return out


def serendipity_candidates(
    histories: Mapping[str, Sequence[str]],
    items: pd.DataFrame,
    n: int = 30,
    exclude: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[str]]:
    """Nearline form: user -> candidate item ids outside the categories of the user's engaged items.

    `items` needs item_id and category ("Top/Sub"; a category without "/" is its own top);
    quality is the item's observed positive share (`n_positive` / `popularity` when present)."""
    ids = items["item_id"].astype(str).to_numpy()
    cats = items["category"].astype(str)
    subs = sorted(cats.unique())
    sub_index = {c: i for i, c in enumerate(subs)}
    tops = sorted({c.split("/")[0] for c in subs})
    top_index = {t: i for i, t in enumerate(tops)}
    sub_of = cats.map(sub_index).to_numpy()
    top_of_sub = np.array([top_index[c.split("/")[0]] for c in subs])
    exp = pd.to_numeric(items.get("popularity", pd.Series(0.0, index=items.index)), errors="coerce").fillna(0.0)
    pos = pd.to_numeric(items.get("n_positive", pd.Series(0.0, index=items.index)), errors="coerce").fillna(0.0)
    quality = item_quality(exp.to_numpy(), np.minimum(pos.to_numpy(), exp.to_numpy()))
    users = list(histories)
    if not users:
        return {}
    pos_of = {i: k for k, i in enumerate(ids)}
    engaged = np.zeros((len(users), len(subs)), dtype=bool)
    excl = np.zeros((len(users), len(ids)), dtype=bool)
    for r, u in enumerate(users):
        idx = [pos_of[i] for i in histories[u] if i in pos_of]
        engaged[r, sub_of[idx]] = True
        excl[r, idx] = True
        if exclude is not None:
            excl[r, [pos_of[i] for i in exclude.get(u, []) if i in pos_of]] = True
    pool = serendipity_pool(engaged, sub_of, top_of_sub, quality, excl, n)
    return {u: [str(ids[i]) for i in row if i >= 0] for u, row in zip(users, pool, strict=True)}


NEARLINE_POOL = 6  # serendipity candidates per refreshed user (SmolLM2 on CPU Triton: ~1 item/s)


def add_serendipity_source(
    cands: pd.DataFrame,
    histories: Mapping[str, Sequence[str]],
    items: pd.DataFrame,
    interactions: pd.DataFrame,
    n: int = NEARLINE_POOL,
) -> pd.DataFrame:
    """`cands` (nearline's per-user main/exploration slates) plus `serendipity_item_ids`: items
    outside the categories of the user's engaged items, ranked by their observed positive rate in
    `interactions`, never one of the user's main or exploration items."""
    from seren.data import is_positive

    if cands.empty:
        return cands.assign(serendipity_item_ids=pd.Series(dtype=object))
    iid = items["item_id"].astype(str)
    it = interactions["item_id"].astype(str)
    exp = it.value_counts().reindex(iid).fillna(0.0).to_numpy()
    pos = it[is_positive(interactions).to_numpy()].value_counts().reindex(iid).fillna(0.0).to_numpy()
    scored = items.assign(popularity=exp, n_positive=pos)
    users = cands["user_id"].astype(str).tolist()
    shown = {u: [*m, *e] for u, m, e in zip(users, cands["main_item_ids"], cands["explore_item_ids"], strict=True)}
    got = serendipity_candidates({u: list(histories.get(u, [])) for u in users}, scored, n, exclude=shown)
    return cands.assign(serendipity_item_ids=[got.get(u, []) for u in users])


def serendipity_channel(pairs: pd.DataFrame, cands: pd.DataFrame) -> pd.DataFrame:
    """The scored pairs the serendipity slots may use: the user's serendipity source only (when
    `cands` has one), so the slots are never filled from the main slate's categories."""
    if "serendipity_item_ids" not in cands.columns or pairs.empty:
        return pairs
    allowed = {
        (str(u), str(i)) for u, ids in zip(cands["user_id"], cands["serendipity_item_ids"], strict=True) for i in ids
    }
    keep = [(str(u), str(i)) in allowed for u, i in zip(pairs["user_id"], pairs["item_id"], strict=True)]
    return pairs[keep]
