"""A hand-built dataset whose profile (and labels) can be worked out by hand."""

from __future__ import annotations

import pandas as pd

from seren.data import Dataset

T0 = pd.Timestamp("2024-01-01", tz="UTC")
CUT = T0 + pd.Timedelta(days=30)


def hand_dataset() -> Dataset:
    """alice: Books/Poetry early, Music/Jazz late (a drifting user); bob: one Garden click.

    Windows (as_of = day 30, t0 = day 0, 3 windows of 10 days):
      w0: Poetry x4 | w1: Poetry x2, Jazz x1 | w2: Jazz x3 (+ a skip of a Garden item)
    Events after day 30 exist for both users and must never influence an as_of=day-30 profile.
    """
    items = pd.DataFrame(
        {
            "item_id": ["b1", "b2", "b3", "b4", "b5", "m1", "m2", "m3", "g1", "g2"],
            "title": [
                "Sonnets",
                "Haiku Year",
                "Lyric Lines",
                "Verse Again",
                "The Alibi",
                "Bebop Nights",
                "Swing Time",
                "Blue Sax",
                "Rose Care",
                "Tulip Beds",
            ],  # fmt: skip
            "text": ["poetry book"] * 4 + ["mystery novel"] + ["jazz record"] * 3 + ["garden guide"] * 2,
            "category": ["Books/Poetry"] * 4
            + ["Books/Mystery"]
            + ["Music/Jazz"] * 3
            + ["Garden/Roses", "Garden/Bulbs"],
            "price": [10.0, 12.0, 14.0, 16.0, 20.0, 30.0, 32.0, 34.0, 50.0, 60.0],
        }
    )
    ev = [
        ("alice", "b1", "click", 1), ("alice", "b2", "like", 2), ("alice", "b3", "purchase", 3), ("alice", "b4", "click", 4),
        ("alice", "b1", "click", 12), ("alice", "b2", "click", 14), ("alice", "m1", "click", 16),
        ("alice", "m2", "like", 22), ("alice", "m3", "click", 24), ("alice", "m1", "purchase", 26), ("alice", "g1", "skip", 27),
        ("bob", "g1", "click", 5), ("bob", "b5", "skip", 6),
        # after the day-30 cutoff
        ("alice", "b5", "purchase", 33), ("alice", "g2", "skip", 34), ("alice", "m2", "click", 35),
        ("bob", "g2", "like", 40), ("bob", "b1", "skip", 41),
    ]  # fmt: skip
    inter = pd.DataFrame(ev, columns=["user_id", "item_id", "event", "day"])
    inter["timestamp"] = T0 + pd.to_timedelta(inter.pop("day"), unit="D")
    inter["rating"] = float("nan")
    users = pd.DataFrame({"user_id": ["alice", "bob", "carol"]})
    return Dataset(interactions=inter, items=items, users=users).validate()
