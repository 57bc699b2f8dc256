"""Cognition profiles: closed-form values on a hand-built history, budget, determinism, cutoff."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from seren.data import Dataset
from seren.errors import DataError
from seren.profiles import ProfileConfig, build_profiles, count_tokens, profile_metrics, profiles_for_feast
from seren.profiles.io import labeling_cutoff, labeling_cutoffs, read_profiles, write_profiles

from .handmade import CUT


def test_hand_built_profile_values(hand: Dataset, tok) -> None:
    df = build_profiles(hand, tok, as_of=CUT).set_index("user_id")
    a = df.loc["alice"]
    assert a["top_categories"] == ["Books", "Music"]
    assert a["interests"] == ["Books/Poetry", "Music/Jazz"]  # by positive count: 6 vs 4
    assert a["category_entropy"] == pytest.approx(-(0.6 * math.log2(0.6) + 0.4 * math.log2(0.4)))
    assert a["exploration_rate"] == 0.0
    assert a["novelty_rate"] == pytest.approx(2 / 10)  # two positives opened a new subcategory
    assert a["stable_interests"] == ["Books/Poetry", "Music/Jazz"]  # each present in 2 of 3 windows
    assert a["fading"] == ["Books/Poetry"] and a["emerging"] == []
    assert a["drift"] == pytest.approx(1.0)  # first window all Poetry, last all Jazz
    assert a["n_events"] == 11 and a["n_positive"] == 10
    assert a["recency_days"] == pytest.approx(3.0)  # last event (the skip) day 27, cutoff day 30
    assert "Engaged subcategories: Books/Poetry 6, Music/Jazz 4" in a["profile_text"]
    assert "Long-term interests: Books/Poetry, Music/Jazz; drift 1.00; fading Books/Poetry." in a["profile_text"]
    b = df.loc["bob"]
    assert b["interests"] == ["Garden/Roses"] and b["top_categories"] == ["Garden"]
    assert math.isnan(b["drift"])  # one active window: no drift
    assert "carol" not in df.index  # no history and not asked for


def test_short_term_window(hand: Dataset, tok) -> None:
    df = build_profiles(hand, tok, as_of=CUT, config=ProfileConfig(short_n=3)).set_index("user_id")
    assert df.loc["alice", "recent_intent"] == ["Music/Jazz"]
    assert "Recent intent: Music/Jazz." in df.loc["alice", "profile_text"]
    full = build_profiles(hand, tok, as_of=CUT, config=ProfileConfig(short_n=50)).set_index("user_id")
    assert full.loc["alice", "recent_intent"] == ["Books/Poetry", "Music/Jazz"]


def test_as_of_excludes_later_events(hand: Dataset, tok) -> None:
    base = build_profiles(hand, tok, as_of=CUT)
    later = pd.DataFrame(
        {
            "user_id": ["alice"] * 5 + ["dave"],
            "item_id": ["g1", "g2", "b5", "m3", "g1", "b1"],
            "event": ["purchase", "like", "like", "skip", "click", "click"],
            "rating": [float("nan")] * 6,
            "timestamp": [CUT + pd.Timedelta(hours=h) for h in (0, 1, 2, 3, 4, 5)],  # at/after the cutoff
        }
    )
    more = Dataset(interactions=pd.concat([hand.interactions, later], ignore_index=True), items=hand.items).validate()
    after = build_profiles(more, tok, as_of=CUT)
    cols = ["user_id", "profile_text", "profile_tokens", "raw_tokens", "interests", "drift"]
    pd.testing.assert_frame_equal(base[cols], after[cols])
    # ... while an event before the cutoff does change the profile.
    earlier = later.iloc[:1].assign(timestamp=CUT - pd.Timedelta(hours=1))
    moved = Dataset(
        interactions=pd.concat([hand.interactions, earlier], ignore_index=True), items=hand.items
    ).validate()
    changed = build_profiles(moved, tok, as_of=CUT).set_index("user_id")
    assert "Garden/Roses" in changed.loc["alice", "interests"]
    assert base.attrs["metrics"]["as_of"] == CUT.isoformat()
    assert (base["as_of"] == CUT).all()


def test_budget_never_exceeded_and_counts_exact(synth: Dataset, tok) -> None:
    for budget in (8, 24, 60, 160):
        df = build_profiles(synth, tok, token_budget=budget)
        recount = count_tokens(tok, df["profile_text"].tolist())
        assert (recount == df["profile_tokens"].to_numpy()).all()
        assert df["profile_tokens"].max() <= budget, budget
        assert (df["profile_tokens"] > 0).all()
        assert df.attrs["metrics"]["max_profile_tokens"] <= budget
    # With room for only a line or two, the engaged-subcategory line (highest priority) survives.
    small = build_profiles(synth, tok, token_budget=60)
    assert small["profile_text"].str.startswith("Engaged subcategories").mean() > 0.5
    assert small.attrs["metrics"]["lines_trimmed"] > 0


def test_compression_ratio_reported(synth: Dataset, tok) -> None:
    df = build_profiles(synth, tok)
    m = df.attrs["metrics"]
    prof, raw = df["profile_tokens"], df["raw_tokens"]
    assert m["mean_profile_tokens"] == pytest.approx(prof.sum() / len(df), abs=0.005)  # rounded to 2 places
    assert m["mean_raw_tokens"] == pytest.approx(raw.sum() / len(df), abs=0.005)
    assert m["max_profile_tokens"] == max(prof) and m["token_budget"] == 160
    assert m["n_users"] == synth.interactions["user_id"].nunique()
    assert m["mean_raw_tokens"] > m["mean_profile_tokens"] > 0
    assert m["compression_ratio"] > 1
    assert m["compression_ratio"] == pytest.approx(df["raw_tokens"].sum() / df["profile_tokens"].sum(), rel=1e-3)
    assert m["p95_profile_tokens"] <= 160 and m["llm_calls"] == 0


def test_profile_metrics_closed_form() -> None:
    """Hand-computed statistics of a 4-user table (one cold user, one summarised)."""
    df = pd.DataFrame(
        {
            "profile_tokens": [10, 20, 30, 40],
            "raw_tokens": [100, 0, 300, 400],
            "summarised": [False, True, False, False],
        }
    )
    assert profile_metrics(df, token_budget=64) == {
        "n_users": 4,
        "mean_profile_tokens": 25.0,
        "p95_profile_tokens": 38.5,  # linear interpolation: 30 + 0.85 * (40 - 30)
        "max_profile_tokens": 40,
        "mean_raw_tokens": 200.0,
        "compression_ratio": 10.0,  # (100 + 300 + 400) / (10 + 30 + 40): the cold user is left out
        "n_summarised": 1,
        "token_budget": 64,
    }


def test_deterministic(synth: Dataset, tok) -> None:
    a = build_profiles(synth, tok, as_of="2024-02-10")
    b = build_profiles(synth, tok, as_of="2024-02-10T00:00:00Z")
    pd.testing.assert_frame_equal(a.drop(columns=[]), b)
    assert a["user_id"].is_monotonic_increasing


def test_users_cold_start_and_unknown(hand: Dataset, tok) -> None:
    df = build_profiles(hand, tok, as_of=CUT, users=["bob", "carol"]).set_index("user_id")
    assert list(df.index) == ["bob", "carol"]
    assert df.loc["carol", "profile_text"] == "New user: no activity before 2024-01-31."
    assert df.loc["carol", "raw_tokens"] == 0 and df.loc["carol", "interests"] == []
    with pytest.raises(DataError, match="unknown user id.*'zed'"):
        build_profiles(hand, tok, users=["bob", "zed"])
    with pytest.raises(DataError, match="no interactions before"):
        build_profiles(hand, tok, as_of="2023-01-01")
    with pytest.raises(DataError, match="not a timestamp"):
        build_profiles(hand, tok, as_of="yesterday-ish")


def test_write_read_and_feast_frame(hand: Dataset, tok, tmp_path) -> None:
    df = build_profiles(hand, tok, as_of=CUT)
    path = write_profiles(df, tmp_path / "p" / "profiles.parquet")
    back = read_profiles(path)
    pd.testing.assert_frame_equal(back, df)
    assert back.attrs["metrics"]["compression_ratio"] == df.attrs["metrics"]["compression_ratio"]
    ts = pd.Timestamp("2024-03-01T12:00:00Z")
    push = profiles_for_feast(df, ts)
    assert list(push.columns) == ["user_id", "profile_text", "profile_tokens", "event_timestamp"]
    assert str(push["event_timestamp"].dtype) == "datetime64[ns, UTC]" and (push["event_timestamp"] == ts).all()
    assert push["profile_tokens"].dtype == "int64"
    with pytest.raises(DataError, match="does not exist"):
        read_profiles(tmp_path / "nope.parquet")


def test_labeling_cutoff(hand: Dataset) -> None:
    assert labeling_cutoff(hand.interactions, 0.0) is None
    cut = labeling_cutoff(hand.interactions, 0.3)
    share_after = (hand.interactions["timestamp"] >= cut).mean()
    assert 0.2 <= share_after <= 0.4
    with pytest.raises(DataError, match="outside"):
        labeling_cutoff(hand.interactions, 1.5)


def test_per_user_cutoffs(hand: Dataset, tok) -> None:
    """Each user's cutoff is a quantile of their own events; a profile only sees events before it."""
    cuts = labeling_cutoffs(hand.interactions, 0.5, snapshots=1, per_user=True)
    assert len(cuts) == 1 and set(cuts[0].index) == {"alice", "bob"}
    ev = hand.interactions
    for user, cut in cuts[0].items():
        own = ev[ev["user_id"] == user]["timestamp"]
        assert 0.3 <= (own < cut).mean() <= 0.7
    df = build_profiles(hand, tok, as_of=cuts[0]).set_index("user_id")
    assert (df["as_of"] == cuts[0].reindex(df.index)).all()
    for user in df.index:
        before = ev[(ev["user_id"] == user) & (ev["timestamp"] < cuts[0][user])]
        assert df.loc[user, "n_events"] == len(before)
    assert df.attrs["metrics"]["as_of_per_user"] is True
    # a mapping that leaves a user out leaves that user out
    only = build_profiles(hand, tok, as_of={"bob": CUT})
    assert list(only["user_id"]) == ["bob"] and only["as_of"].iloc[0] == CUT


def test_single_top_catalogue_ranks_subcategories(hand: Dataset, tok) -> None:
    """With one top level ("Movies/<genre>"), the top-interest line ranks the genres instead."""
    items = hand.items.assign(category="Movies/" + hand.items["category"].str.split("/").str[1])
    movies = Dataset(interactions=hand.interactions, items=items).validate()
    df = build_profiles(movies, tok, as_of=CUT).set_index("user_id")
    assert df.loc["alice", "top_categories"] == ["Movies/Poetry", "Movies/Jazz"]
    assert df.loc["alice", "profile_text"].count("Movies 100%") == 0


def test_item_text_rendering() -> None:
    from seren.profiles import item_text

    items = pd.DataFrame(
        {
            "title": ["Memento (2000)", "Tent", "Sonnets", "Atlas"],
            "text": [
                "Memento (2000). Genres: Mystery.",
                "Tent",
                "A poetry book.",
                " ".join(f"w{i}" for i in range(30)) + "\nsecond line",
            ],
            "category": ["Movies/Mystery", "Outdoors/Camping", "Books/Poetry", "Books/Maps"],
            "price": [float("nan"), 120.0, 9.5, 3.0],
        }
    )
    assert item_text(items).tolist() == [
        "Memento (2000)\nCategory: Movies/Mystery\nGenres: Mystery.",
        "Tent\nCategory: Outdoors/Camping",  # no price: it says little and costs ~9 tokens
        "Sonnets\nCategory: Books/Poetry\nA poetry book.",
        "Atlas\nCategory: Books/Maps\n" + " ".join(f"w{i}" for i in range(20)),  # DESCRIPTION_WORDS
    ]
