"""seren.recommend against a real Feast store (local SQLite): slate composition and positions,
fallbacks with their reasons, no duplicates, k bounds, unknown users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from seren.errors import ConfigError
from seren.recommend import SerenRecommendError, format_slate, recommend, slot_layout

pytestmark = pytest.mark.integration

MAIN = [f"i{n:05d}" for n in range(10, 24)]  # 14 cached main items, in rank order
CANDS = ["i00100", "i00011", "i00101", "i00102", "i00103"]
SCORES = [0.62, 0.99, 0.91, 0.40, 0.75]  # i00011 (best) is also the main slate's #2
EXPLORE = ["i00100", "i00120", "i00121"]  # i00100 is also a serendipity candidate


def positions(result: dict[str, Any], source: str) -> list[int]:
    return [s["position"] for s in result["slate"] if s["source"] == source]


def item_ids(result: dict[str, Any]) -> list[str]:
    return [s["item_id"] for s in result["slate"]]


def test_slot_layout_is_deterministic() -> None:
    layout, dropped = slot_layout(10)
    assert [i + 1 for i, kind in enumerate(layout) if kind != "main"] == [3, 5, 7]
    assert (layout[2], layout[4], layout[6]) == ("serendipity", "exploration", "serendipity")
    assert dropped == {"serendipity": 0, "exploration": 0}
    layout, dropped = slot_layout(10, n_serendipity=3, n_explore=2)  # 3, 5, 7, 9 fit; 11 does not
    assert layout[2::2] == ["serendipity", "exploration", "serendipity", "exploration"]
    assert dropped == {"serendipity": 1, "exploration": 0}
    assert slot_layout(4) == (["main", "main", "serendipity", "main"], {"serendipity": 1, "exploration": 1})
    assert slot_layout(2)[0] == ["main", "main"] and slot_layout(10, 0, 0)[0] == ["main"] * 10
    for bad in ({"k": 0}, {"k": 101}, {"k": 5, "n_serendipity": -1}):
        with pytest.raises(ConfigError):
            slot_layout(**bad)


def test_full_slate(store: Any, cache: Any, items: pd.DataFrame) -> None:
    cache.candidates(store, "r-full", MAIN, CANDS, SCORES, EXPLORE, pair="c3|c7")
    cache.novel(store, "c3|c7", ["c9", "c2"], [0.8, 0.1])
    res = recommend(store, "r-full")

    assert res["fallbacks"] == [] and len(res["slate"]) == 10
    assert [s["position"] for s in res["slate"]] == list(range(1, 11))
    assert positions(res, "serendipity") == [3, 7] and positions(res, "exploration") == [5]
    ids = item_ids(res)
    assert len(set(ids)) == 10  # no duplicates
    # serendipity: highest score first, skipping i00011 which the main slate shows anyway
    assert [ids[2], ids[6]] == ["i00101", "i00103"]
    assert [s["label"] for s in res["slate"] if s["source"] == "serendipity"] == [
        "serendipity(0.91)",
        "serendipity(0.75)",
    ]
    # exploration: the first cached exploration item, labelled with the pair's novel clusters
    assert ids[4] == "i00100" and res["slate"][4]["label"] == "exploration(c9,c2)"
    assert res["cluster_pair"] == "c3|c7" and res["novel_clusters"][0] == {"cluster": "c9", "score": 0.8}
    # main positions keep the recommender's order
    assert [ids[p - 1] for p in positions(res, "main")] == MAIN[:7]
    titles = items.set_index("item_id")
    for s in res["slate"]:
        assert (s["title"], s["category"]) == (titles.loc[s["item_id"], "title"], titles.loc[s["item_id"], "category"])
    assert res["n_online_reads"] == 4  # candidates, pair table, item titles, profile (outside-history flag)
    assert 0 < res["timings_ms"]["online_reads"] <= res["timings_ms"]["total"]

    text = format_slate(res)
    assert "cluster pair c3|c7" in text and "serendipity(0.91)" in text and "fallback" not in text
    assert text.splitlines()[4].split()[:3] == ["3", "i00101", "serendipity(0.91)"]


def test_stale_candidates_fall_back_to_main(store: Any, cache: Any) -> None:
    cache.candidates(
        store, "r-old", MAIN, CANDS, SCORES, EXPLORE, pair="c3|c7", when=datetime.now(UTC) - timedelta(days=3)
    )
    cache.novel(store, "c3|c7", ["c9"], [0.8])
    res = recommend(store, "r-old")
    assert item_ids(res) == MAIN[:10] and {s["source"] for s in res["slate"]} == {"main"}
    assert "serendipity: candidates stale (age 3.0d > max 2.0d)" in res["fallbacks"]
    assert "exploration: candidates stale (age 3.0d > max 2.0d)" in res["fallbacks"]
    assert res["fallbacks"][0].startswith("main: cached slate stale (age 3.0d > max 2.0d); served anyway")
    assert res["sources"]["user_candidates"]["status"] == "stale"
    # a looser limit serves the same row as fresh
    assert positions(recommend(store, "r-old", max_age=timedelta(days=5)), "serendipity") == [3, 7]


def test_freshness_uses_now(store: Any, cache: Any) -> None:
    cache.candidates(store, "r-now", MAIN, CANDS, SCORES)
    assert positions(recommend(store, "r-now"), "serendipity") == [3, 7]
    later = recommend(store, "r-now", now=datetime.now(UTC) + timedelta(hours=50), max_age=timedelta(days=2))
    assert positions(later, "serendipity") == [] and any(
        "candidates stale (age 2.1d > max 2.0d)" in f for f in later["fallbacks"]
    )


@pytest.mark.parametrize(
    ("pair", "novel", "reason"),
    [
        ("c4|c8", None, "exploration: no novel-interest row for pair c4|c8"),
        ("", None, "exploration: user has fewer than two interest clusters (no cluster pair)"),
        ("c5|c6", (["c1"], [0.5], 40), "exploration: novel-interest row for pair c5|c6 stale (age 40.0d > max 35.0d)"),
        ("c6|c5", ([], [], 0), "exploration: pair c6|c5 has no novel clusters"),
    ],
)
def test_exploration_fallbacks(store: Any, cache: Any, pair: str, novel: Any, reason: str) -> None:
    uid = f"r-exp-{pair or 'none'}"
    cache.candidates(store, uid, MAIN, CANDS, SCORES, EXPLORE, pair=pair)
    if novel is not None:
        cache.novel(store, pair, novel[0], novel[1], when=datetime.now(UTC) - timedelta(days=novel[2]))
    res = recommend(store, uid)
    assert res["fallbacks"] == [reason]
    assert positions(res, "exploration") == [] and positions(res, "serendipity") == [3, 7]
    # the exploration slot (5) takes the next main item: main order is kept around the surprises
    assert [s["item_id"] for s in res["slate"] if s["source"] == "main"] == MAIN[:8]


def test_serendipity_fallbacks(store: Any, cache: Any) -> None:
    cache.candidates(store, "r-nocand", MAIN)
    res = recommend(store, "r-nocand", n_explore=0)
    assert item_ids(res) == MAIN[:10]
    assert res["fallbacks"] == ["serendipity: no cached SerenGPT candidates above threshold"]

    cache.candidates(store, "r-dup", MAIN, MAIN[:3], [0.9, 0.8, 0.7])  # all already shown as main items
    res = recommend(store, "r-dup", n_explore=0)
    assert item_ids(res) == MAIN[:10]
    assert res["fallbacks"] == ["serendipity: every cached candidate is already in the main slate"]

    cache.candidates(store, "r-one", MAIN, ["i00150", MAIN[0]], [0.5, 0.9])
    res = recommend(store, "r-one", n_explore=0)
    assert positions(res, "serendipity") == [3] and item_ids(res)[2] == "i00150"
    assert res["fallbacks"] == ["serendipity: only 1 new candidate(s) for 2 slot(s)"]


def test_k_bounds_and_short_slates(store: Any, cache: Any) -> None:
    cache.candidates(store, "r-k", MAIN[:4], CANDS, SCORES)
    assert item_ids(recommend(store, "r-k", k=1)) == [MAIN[0]]
    res = recommend(store, "r-k", k=4, n_explore=0)
    assert [s["source"] for s in res["slate"]] == ["main", "main", "serendipity", "main"]
    assert res["fallbacks"] == ["serendipity: 1 slot(s) do not fit in k=4 (special slots sit at 3, 5, 7, ...)"]
    res = recommend(store, "r-k", k=20, n_serendipity=3, n_explore=0)  # 4 main + 3 candidates left
    assert len(res["slate"]) == len(set(item_ids(res))) == 7
    assert res["fallbacks"][-1] == "main: only 7 distinct cached item(s) for k=20"
    for bad in (0, 101):
        with pytest.raises(ConfigError, match=f"k={bad} is out of range"):
            recommend(store, "r-k", k=bad)


def test_unknown_item_metadata_is_reported(store: Any, cache: Any) -> None:
    cache.candidates(store, "r-meta", ["i00001", "not-an-item", "i00002"])
    res = recommend(store, "r-meta", k=3, n_serendipity=0, n_explore=0)
    assert res["slate"][1]["title"] is None and res["slate"][0]["title"]
    assert res["fallbacks"] == ["item_features: no row for not-an-item (shown without title)"]


def test_unknown_and_uncached_users(store: Any) -> None:
    with pytest.raises(SerenRecommendError, match="unknown user 'nobody'"):
        recommend(store, "nobody")
    # u00001 is in user_stats (a known user) but the nearline job has not cached anything for it
    with pytest.raises(SerenRecommendError, match=r"no cached recommendations.*seren nearline run"):
        recommend(store, "u00001")


def test_demo_sample_slates(store: Any, cache: Any) -> None:
    from seren.recommend import pick_users, sample_slates

    # the offline copy of the pushes is how a demo finds users (other tests push online only)
    cache.candidates(store, "r-demo-b", MAIN, CANDS, SCORES, EXPLORE, pair="c3|c7", to="online_and_offline")
    cache.candidates(store, "r-demo-a", MAIN, to="online_and_offline")  # no candidates: listed last
    cache.candidates(store, "r-demo-c", MAIN, CANDS, SCORES, to="online_and_offline")  # no pair
    cache.novel(store, "c3|c7", ["c9"], [0.8])
    assert pick_users(store, n=3) == ["r-demo-b", "r-demo-a", "r-demo-c"]  # rich first, then by id
    text = sample_slates(store, n=3, k=5)
    blocks = text.split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [
        "user r-demo-b (k=5, cluster pair c3|c7)",
        "user r-demo-a (k=5)",
        "user r-demo-c (k=5)",
    ]
    assert "exploration(c9)" in blocks[0] and "fallback: serendipity: no cached SerenGPT candidates" in blocks[1]
    assert sample_slates(store, users=["nobody"]).startswith("user nobody: error: unknown user 'nobody'")


def test_watermark_clock_for_replayed_data(store: Any, cache: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Nearline stamps rows with the data's event time: on replayed data judge ages against the
    watermark, not the wall clock."""
    from feature_repo import store as fs
    from seren.nearline.state import WatermarkStore, nearline_dir

    window_end = datetime(2024, 3, 1, 12, tzinfo=UTC)
    cache.candidates(store, "r-replay", MAIN, CANDS, SCORES, when=window_end)
    assert positions(recommend(store, "r-replay", n_explore=0), "serendipity") == []  # wall clock: ~years old
    with pytest.raises(ConfigError, match="no nearline watermark"):
        recommend(store, "r-replay", now="watermark")
    WatermarkStore(nearline_dir(fs.data_dir_of(store))).write(window_end + timedelta(hours=6))
    res = recommend(store, "r-replay", n_explore=0, now="watermark")
    assert positions(res, "serendipity") == [3, 5] and res["fallbacks"] == []  # no exploration slot: 3, 5
    assert res["reference_time"] == "2024-03-01T18:00:00+00:00"
    assert res["sources"]["user_candidates"]["age_s"] == pytest.approx(6 * 3600)
    with pytest.raises(ConfigError, match="bad reference time 'tomorrow'"):
        recommend(store, "r-replay", now="tomorrow")


def test_build_slate_is_pure_and_never_repeats_main() -> None:
    from seren.recommend import CachedCandidates, build_slate

    cached = CachedCandidates(
        main=["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"],
        serendipity=[("m2", 0.99), ("s1", 0.5), ("s2", 0.8)],
        explore=["s2", "e1"],
        cluster_label="c1",
    )
    slots, fallbacks = build_slate(cached, k=8)
    assert [s["item_id"] for s in slots] == ["m1", "m2", "s2", "m3", "e1", "m4", "s1", "m5"]
    assert [s["source"] for s in slots][2:7] == ["serendipity", "main", "exploration", "main", "serendipity"]
    assert fallbacks == []
    slots, fallbacks = build_slate(CachedCandidates(main=["m1", "m2", "m3"], serendipity_reason="serendipity: x"), k=5)
    assert [s["item_id"] for s in slots] == ["m1", "m2", "m3"]
    assert "serendipity: x" in fallbacks and fallbacks[-1] == "main: only 3 distinct cached item(s) for k=5"


def test_outside_history_reads_the_profile_list() -> None:
    from seren.recommend import engaged_categories, outside_history

    prof = "Engaged subcategories: Books/Poetry 4, Music/Jazz 1; Top interests: Books 4 (entropy 0.5)"
    eng = engaged_categories(prof)
    assert eng == ({"Books/Poetry", "Music/Jazz"}, True)
    assert outside_history("Books/Poetry", eng) is False and outside_history("Books/Sci-Fi", eng) is True
    cut = engaged_categories("Engaged subcategories: Books/Poetry 4 (+3 more); ")
    assert outside_history("Books/Sci-Fi", cut) is None and outside_history("Books/Poetry", cut) is False
    assert outside_history("Books/Poetry", None) is None
