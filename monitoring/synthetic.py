"""Judgments from a canonical dataset with a deterministic stand-in scorer (no model needed).

For tests, benchmarks and demos of monitoring that must not wait for SerenGPT: each user gets
candidates drawn (seeded) from the catalogue, and a fixed logistic rule scores them the way a
serendipity judge should lean: up for an unseen sub-category of a top category the user likes,
down for what the user already consumes and for blockbusters, up for users with broad tastes.
Run it on `generate(SyntheticConfig(shift=0))` and on `shift=1` (a more curious population with
other favourite categories) to get reference and drifted current judgments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitoring.judgments import JUDGMENT_COLUMNS, validate_judgments
from seren.data.dataset import Dataset
from seren.data.schema import is_positive


def _norm(p: np.ndarray) -> np.ndarray:
    return p / p.sum()


def synthetic_judgments(
    ds: Dataset,
    as_of: pd.Timestamp | str | None = None,
    *,
    n_candidates: int = 8,
    threshold: float = 0.5,
    seed: int = 0,
    users: list[str] | None = None,
    judged_at: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """JUDGMENT_COLUMNS for every user with history before `as_of` (default: 80% into the log).

    event_timestamp = `judged_at` (default `as_of`) plus one second per user, so windows can be
    placed anywhere (e.g. judged_at=now for "the last day") while feedback still comes from the
    interactions after `as_of`.
    """
    inter = ds.interactions
    t0, t1 = inter["timestamp"].min(), inter["timestamp"].max()
    cut = pd.Timestamp(as_of) if as_of is not None else t0 + 0.8 * (t1 - t0)
    cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut
    stamp = pd.Timestamp(judged_at) if judged_at is not None else cut
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    hist = inter[inter["timestamp"] <= cut]
    pos = hist[is_positive(hist)]

    items = ds.items[["item_id", "category"]].astype(str).reset_index(drop=True)
    top = items["category"].str.split("/").str[0]
    n_subs = max(items["category"].nunique(), 2)
    pos_counts = pos.groupby("item_id").size().reindex(items["item_id"]).fillna(0).to_numpy()
    popularity = pos_counts / max(pos_counts.sum(), 1.0)
    draw_p = (popularity + 1.0 / len(items)) / (popularity + 1.0 / len(items)).sum()

    # the judge's learned base rate per top category (it saw more pleasant surprises in some): a
    # population that moves to other categories moves the score distribution with it
    tops = list(dict.fromkeys(top))
    prior = dict(zip(tops, np.linspace(-2.0, 2.0, len(tops)), strict=True))

    cat_of = dict(zip(items["item_id"], items["category"], strict=True))
    pos_cats = pos.assign(category=pos["item_id"].map(cat_of))
    n_events = hist.groupby("user_id").size()  # users with any history before the cut
    who = sorted(n_events.index if users is None else set(users) & set(n_events.index))
    rng = np.random.default_rng(seed)
    rows = []
    for n, u in enumerate(who):
        cats = pos_cats.loc[pos_cats["user_id"] == u, "category"]
        seen_subs = set(cats)
        liked_tops = set(cats.str.split("/").str[0])
        share = cats.value_counts(normalize=True)  # over "Top/Sub" paths, as user_stats computes it
        entropy = float(-(share * np.log2(share)).sum()) if len(share) else 0.0
        tokens = int(min(160, 12 + 3 * len(cats)))  # a profile grows with the positives it summarises
        # half the slate from the user's liked top categories, half from the whole catalogue
        liked = top.isin(liked_tops).to_numpy()
        n_liked = min(n_candidates // 2, int(liked.sum())) if liked.any() else 0
        first = (
            rng.choice(np.flatnonzero(liked), size=n_liked, replace=False, p=_norm(draw_p[liked])) if n_liked else []
        )
        rest_p = draw_p.copy()
        rest_p[np.asarray(first, dtype=int)] = 0.0
        pick = [
            *first,
            *rng.choice(len(items), size=min(n_candidates, len(items)) - n_liked, replace=False, p=_norm(rest_p)),
        ]
        for i in pick:
            sub, t = items.at[i, "category"], top.iat[i]
            z = (
                -1.0
                + prior[t]
                + 2.2 * float(t in liked_tops and sub not in seen_subs)
                - 1.2 * float(sub in seen_subs)
                + 1.5 * entropy / np.log2(n_subs)
                - 40.0 * popularity[i]
            )
            score = float(1.0 / (1.0 + np.exp(-z)))
            rows.append(
                (u, items.at[i, "item_id"], score, int(score >= threshold), tokens, entropy, float(popularity[i]), n)
            )
    df = pd.DataFrame(rows, columns=[*JUDGMENT_COLUMNS[:-1], "_n"])
    df["event_timestamp"] = stamp + pd.to_timedelta(df.pop("_n"), unit="s")
    return validate_judgments(df[list(JUDGMENT_COLUMNS)], "synthetic judgments")
