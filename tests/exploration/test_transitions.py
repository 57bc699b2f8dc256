"""Novel transitions: hand-built sequences, novelty on real data, time split, bad inputs."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from seren.errors import ConfigError, DataError
from seren.exploration.transitions import Transitions, build_transitions, cluster_sequences, novel_triples

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _inter(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"user_id": u, "item_id": i, "event": e, "rating": float("nan"), "timestamp": T0 + pd.Timedelta(hours=h)}
            for u, i, e, h in rows
        ]
    )


ITEM_CLUSTER = {"x1": "x", "x2": "x", "y1": "y", "z1": "z", "w1": "w"}
DESC = {"x": "jazz", "y": "poetry", "z": "hiking", "w": "sushi"}


def test_hand_built_sequence() -> None:
    # positives: x x y x z y w ; the skip of w1 at h=3 is not an engagement
    inter = _inter(
        [
            ("a", "x1", "click", 0),
            ("a", "x2", "like", 1),
            ("a", "y1", "click", 2),
            ("a", "w1", "skip", 3),
            ("a", "x1", "click", 4),
            ("a", "z1", "purchase", 5),
            ("a", "y1", "click", 6),
            ("a", "w1", "click", 7),
            ("b", "x1", "click", 0),
            ("b", "x2", "click", 1),
        ]  # fmt: skip
    )
    seqs = cluster_sequences(inter, ITEM_CLUSTER)
    assert seqs[seqs.user_id == "a"]["cluster_id"].tolist() == ["x", "y", "x", "z", "y", "w"]
    triples, counts = novel_triples(seqs)
    assert triples[["c1", "c2", "c_next"]].values.tolist() == [["y", "x", "z"], ["z", "y", "w"]]
    assert counts["users_skipped_lt2_clusters"] == 1  # user b only ever engaged with x


def test_window_adds_later_novel_clusters_as_targets() -> None:
    # positives: x y x z y w ; window=2 pairs each (c1, c2) with the novel clusters of the next 2 steps
    inter = _inter([("a", c + "1", "click", h) for h, c in enumerate("xyxzyw")])
    seqs = cluster_sequences(inter, ITEM_CLUSTER)
    immediate, _ = novel_triples(seqs)
    assert set(immediate["offset"]) == {0}
    wide, _ = novel_triples(seqs, window=2)
    assert wide[["c1", "c2", "c_next", "offset"]].values.tolist() == [
        ["x", "y", "z", 1],  # z is two steps after (x, y): new to the user there
        ["y", "x", "z", 0],
        ["x", "z", "w", 1],
        ["z", "y", "w", 0],
    ]
    with pytest.raises(ConfigError, match="window"):
        novel_triples(seqs, window=0)


def test_window_widens_training_only(small_ds: Any, small_clusters: Any, small_transitions: Transitions) -> None:
    w3 = build_transitions(
        small_ds.interactions,
        small_clusters.item_to_cluster,
        small_clusters.descriptions,
        min_count=1,
        test_frac=0.2,
        window=3,
    )
    base = small_transitions
    # the held-out set, the cutoff and the baselines' history are the immediate-next triples either way
    pd.testing.assert_frame_equal(w3.test, base.test)
    pd.testing.assert_frame_equal(w3.history, base.history)
    assert w3.cutoff == base.cutoff
    # the immediate training triples are all still there, plus later novel clusters of the same pairs
    key = ["c1", "c2", "c_next"]
    both = base.train[key + ["count"]].merge(w3.train[key + ["count"]], on=key, how="left", suffixes=("", "_w"))
    assert both["count_w"].notna().all() and (both["count_w"] >= both["count"]).all()
    assert w3.train["count"].sum() == w3.metrics["train_targets_windowed"] > base.train["count"].sum()
    assert w3.metrics["window"] == 3 and base.metrics["window"] == 1
    # no training target leaks past the cutoff: every one is new to its user before the cutoff
    seqs = w3.sequences
    before = seqs[seqs["timestamp"] < w3.cutoff].groupby("user_id")["cluster_id"].agg(set)
    pairs_seen = set(zip(seqs["cluster_id"].shift(), seqs["cluster_id"], strict=True))
    for row in w3.train.itertuples():
        assert (row.c1, row.c2) in pairs_seen and row.c_next not in (row.c1, row.c2)
    assert set(w3.train["c_next"]) <= set().union(*before.tolist())


def test_novelty_and_time_split_on_synthetic(small_transitions: Transitions) -> None:
    seqs = small_transitions.sequences
    all_triples = pd.concat([small_transitions.history, small_transitions.test])
    for row in all_triples.itertuples():
        before = seqs[(seqs.user_id == row.user_id) & (seqs.timestamp < row.timestamp)]["cluster_id"].tolist()
        assert row.c_next not in before, "c_next must be new to the user"
        assert before[-2:] == [row.c1, row.c2]
    assert (small_transitions.history["timestamp"] < small_transitions.cutoff).all()
    assert (small_transitions.test["timestamp"] >= small_transitions.cutoff).all()
    tr = small_transitions.train
    assert tr["count"].sum() == len(small_transitions.history)  # min_count=1 keeps all
    assert tr["prompt"].str.contains("; then ").all() and tr["completion"].str.startswith(" ").all()
    m = small_transitions.metrics
    assert m["users_skipped_lt2_clusters"] >= 0 and m["test_triples"] == len(small_transitions.test) > 0
    frame = small_transitions.sft_frame(max_repeat=1)
    assert len(frame) == len(tr)


def test_rare_transitions_dropped_and_empty_is_an_error(small_ds: Any, small_clusters: Any) -> None:
    full = build_transitions(
        small_ds.interactions, small_clusters.item_to_cluster, small_clusters.descriptions, min_count=1
    )
    top = int(full.train["count"].max())
    kept = build_transitions(
        small_ds.interactions, small_clusters.item_to_cluster, small_clusters.descriptions, min_count=top
    )
    assert (kept.train["count"] >= top).all() and len(kept.train) <= len(full.train)
    assert len(kept.test) == len(full.test)  # the threshold never touches the held-out set
    with pytest.raises(DataError, match=f"min_count={top + 1}.*Fix: lower min_count"):
        build_transitions(
            small_ds.interactions, small_clusters.item_to_cluster, small_clusters.descriptions, min_count=top + 1
        )


def test_bad_inputs() -> None:
    one_cluster = _inter([("a", "x1", "click", 0), ("a", "x2", "click", 1)])
    with pytest.raises(DataError, match="fewer than two clusters"):
        build_transitions(one_cluster, ITEM_CLUSTER, DESC)
    with pytest.raises(DataError, match="no positive engagement"):
        build_transitions(_inter([("a", "x1", "skip", 0)]), ITEM_CLUSTER, DESC)
    with pytest.raises(ConfigError, match="min_count"):
        build_transitions(one_cluster, ITEM_CLUSTER, DESC, min_count=0)
    with pytest.raises(ConfigError, match="test_frac"):
        build_transitions(one_cluster, ITEM_CLUSTER, DESC, test_frac=1.5)


def test_save_load(small_transitions: Transitions, tmp_path: Any) -> None:
    back = Transitions.load(small_transitions.save(tmp_path / "t"))
    pd.testing.assert_frame_equal(back.train, small_transitions.train)
    assert back.cutoff == small_transitions.cutoff and back.metrics == small_transitions.metrics
    with pytest.raises(DataError, match="not a transitions directory"):
        Transitions.load(tmp_path / "nope")
