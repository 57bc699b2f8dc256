"""seren.exploration.lookup: last two clusters -> pair lookup -> restricted recommendations, on a
hand-built log where every expected value is known."""

from __future__ import annotations

import pandas as pd

from seren.exploration.lookup import explore_users, last_clusters, lookup_pair
from seren.exploration.pair_table import PairLookup

I2C = {"a1": "A", "a2": "A", "b1": "B", "c1": "C", "c2": "C", "d1": "D"}


def _log() -> pd.DataFrame:
    rows = [  # (user, item, event, minute)
        ("u1", "a1", "click", 1),
        ("u1", "a2", "click", 2),  # repeat of A: dropped
        ("u1", "b1", "click", 3),
        ("u1", "d1", "view", 4),  # not positive: ignored
        ("u2", "c1", "click", 1),  # one cluster
        ("u3", "d1", "view", 1),  # no positive engagement
    ]
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "event": [r[2] for r in rows],
            "rating": [float("nan")] * len(rows),
            "timestamp": pd.to_datetime([f"2026-01-01 00:{r[3]:02d}" for r in rows], utc=True),
        }
    )


class _Rec:
    """Scores items by reverse id; records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def recommend_batch(self, histories, k, allowed_item_ids):
        self.calls.append((histories, k, allowed_item_ids))
        return [[(i, 1.0 / (n + 1)) for n, i in enumerate(sorted(a, reverse=True)[:k])] for a in allowed_item_ids]


def _table() -> PairLookup:
    return PairLookup(
        pd.DataFrame(
            {
                "cluster_pair": ["A|B", "C|C"],
                "c2": ["B", "C"],
                "novel_clusters": [["C", "D"], ["A"]],
                "novel_scores": [[0.7, 0.3], [1.0]],
            }
        )
    )


def test_last_clusters_and_the_lookup_pair() -> None:
    got = last_clusters(_log(), ["u1", "u2", "u3"], I2C)
    assert got == {"u1": ["A", "B"], "u2": ["C"]}
    assert lookup_pair(["A", "B"]) == ("A", "B") and lookup_pair(["C"]) == ("C", "C") and lookup_pair([]) is None


def test_explore_users_restricts_to_novel_clusters_minus_exclusions() -> None:
    rec = _Rec()
    hist = {"u1": ["a1", "b1"], "u2": ["c1"], "u3": []}
    out = explore_users(hist, _log(), I2C, _table(), rec, k=2, n_novel=2, exclude={"u1": {"c2"}})
    assert list(out) == ["u1", "u2", "u3"]
    u1, u2, u3 = out["u1"], out["u2"], out["u3"]
    assert (u1.pair_key, u1.novel_clusters, u1.novel_scores, u1.source) == ("A|B", ["C", "D"], [0.7, 0.3], "table")
    assert [i for i, _ in u1.items] == ["d1", "c1"]  # c2 excluded (e.g. already in the main slate)
    assert (u2.pair_key, u2.last_clusters, u2.novel_clusters) == ("", ["C"], ["A"])  # (C, C) row
    assert [i for i, _ in u2.items] == ["a2", "a1"]
    assert (u3.pair_key, u3.novel_clusters, u3.items, u3.source) == ("", [], [], "none")
    assert len(rec.calls) == 1 and rec.calls[0][1] == 2  # one batched call for every user
    assert rec.calls[0][2] == [{"c1", "d1"}, {"a1", "a2"}, set()]


def test_no_recommender_or_k0_still_looks_up() -> None:
    out = explore_users({"u1": ["a1", "b1"]}, _log(), I2C, _table(), None, k=3, n_novel=1)
    assert out["u1"].novel_clusters == ["C"] and out["u1"].items == []
    rec = _Rec()
    assert explore_users({"u1": ["a1"]}, _log(), I2C, _table(), rec, k=0, n_novel=1)["u1"].items == []
    assert rec.calls == []
