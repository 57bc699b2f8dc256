"""The closed loop: every arm's slates come from the one slate function; metrics and lifts."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from seren import recommend as rec
from seren.errors import ConfigError
from seren.nearline.candidates import serendipity_candidates, serendipity_pool
from seren.simulation import ARMS, SimConfig, simulate, stats
from seren.simulation.judges import heuristic_matrix

TINY = SimConfig(n_users=60, n_items=120, n_top=4, n_sub=3, history_events=15, rounds=3, retrain_every=2, n_boot=200)


@pytest.fixture(scope="module")
def tiny_result() -> dict:
    return simulate(TINY)


def test_every_arm_builds_its_slates_with_build_slate(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[tuple[int, int], int] = {}
    real = rec.build_slate

    def counting(cached: rec.CachedCandidates, k: int = 10, n_serendipity: int = 2, n_explore: int = 1):
        calls[(n_serendipity, n_explore)] = calls.get((n_serendipity, n_explore), 0) + 1
        return real(cached, k, n_serendipity, n_explore)

    monkeypatch.setattr(rec, "build_slate", counting)
    res = simulate(TINY)
    assert res["slate_function_calls"] == {a: 60 * 3 for a in ARMS}
    per_layout: dict[tuple[int, int], int] = {}
    for n_ser, n_exp, _, _ in ARMS.values():
        per_layout[(n_ser, n_exp)] = per_layout.get((n_ser, n_exp), 0) + 60 * 3
    assert calls == per_layout


def test_an_arm_that_bypassed_the_slate_function_would_show(monkeypatch: pytest.MonkeyPatch, tiny_result) -> None:
    """With a slate function that ignores every special slot, all arms serve control's slates:
    the arms differ only through what build_slate makes of their caches."""
    real = rec.build_slate
    monkeypatch.setattr(rec, "build_slate", lambda cached, k=10, n_serendipity=2, n_explore=1: real(cached, k, 0, 0))
    res = simulate(dataclasses.replace(TINY, arms=("control", "seren", "random_unexpected")))
    control = res["per_round"]["control"]
    assert res["per_round"]["seren"] == control and res["per_round"]["random_unexpected"] == control
    assert tiny_result["per_round"]["seren"] != tiny_result["per_round"]["control"]


def test_result_is_deterministic_and_control_is_the_base(tiny_result) -> None:
    again = simulate(TINY)
    assert json.dumps(again["table"], sort_keys=True) == json.dumps(tiny_result["table"], sort_keys=True)
    assert set(tiny_result["table"]) == set(ARMS)
    assert "lift" not in tiny_result["table"]["control"]["total_clicks"]
    cell = tiny_result["table"]["seren"]["serendipitous_exposure_share"]
    assert cell["ci_low"] <= cell["lift"] <= cell["ci_high"]
    # surprise slots raise the share of unexpected exposures over the main recommender alone
    assert cell["lift"] > 0
    assert all(len(v) == TINY.rounds for v in tiny_result["per_round"]["seren"].values())
    assert tiny_result["judge"] == "behaviour" and "behaviour" in tiny_result["judge_label"]


def test_bad_settings_are_config_errors() -> None:
    for bad in ({"arms": ("seren",)}, {"arms": ("control", "nope")}, {"judge": "oracle"}, {"judge": "serengpt"}):
        with pytest.raises(ConfigError):
            dataclasses.replace(TINY, **bad).validate()


def test_stats_closed_forms() -> None:
    assert stats.gini(np.array([1.0, 1.0, 1.0])) == pytest.approx(0.0)
    assert stats.gini(np.array([0.0, 0.0, 1.0])) == pytest.approx(2 / 3)
    np.testing.assert_allclose(
        stats.entropy_rows(np.array([[1.0, 1.0], [3.0, 0.0], [0.0, 0.0]])), [np.log(2), 0.0, 0.0]
    )
    a = (np.array([2.0, 4.0]), np.ones(2))
    same = stats.paired_lift(a, a, n_boot=50)
    assert same["lift"] == 0.0 and same["ci_low"] == 0.0 and same["ci_high"] == 0.0
    assert stats.paired_lift((np.array([3.0, 6.0]), np.ones(2)), a, n_boot=50)["lift"] == pytest.approx(0.5)
    assert stats.paired_diff(np.array([1.0, 3.0]), np.array([0.0, 0.0]), n_boot=50)["diff"] == pytest.approx(2.0)


def test_serendipity_pool_stays_outside_engaged_subcategories() -> None:
    # 2 tops x 2 subs; user 0 engaged sub 0 (top 0); items: two per sub
    sub_of = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    top_of_sub = np.array([0, 0, 1, 1])
    engaged = np.array([[True, False, False, False]])
    quality = np.array([0.9, 0.8, 0.2, 0.7, 0.6, 0.1, 0.5, 0.4])
    pool = serendipity_pool(engaged, sub_of, top_of_sub, quality, None, n=3, sibling_share=2 / 3)
    assert pool.tolist() == [[3, 2, 4]]  # sibling sub 1 best first, then the best far item
    # one item per unengaged subcategory before any second one (5 outranks 6 on quality alone)
    q2 = np.array([0.9, 0.8, 0.2, 0.7, 0.6, 0.55, 0.5, 0.4])
    assert serendipity_pool(engaged, sub_of, top_of_sub, q2, None, n=4, sibling_share=0.5).tolist() == [[3, 2, 4, 6]]
    excl = np.zeros((1, 8), dtype=bool)
    excl[0, 3] = True
    assert serendipity_pool(engaged, sub_of, top_of_sub, quality, excl, n=3, sibling_share=1.0).tolist() == [[2, 4, 6]]
    items = pd.DataFrame(
        {"item_id": [f"i{j}" for j in range(8)], "category": ["A/x", "A/x", "A/y", "A/y", "B/z", "B/z", "B/w", "B/w"]}
    )
    got = serendipity_candidates({"u": ["i0"]}, items, n=4)
    assert set(got["u"]) <= {"i2", "i3", "i4", "i5", "i6", "i7"} and len(got["u"]) == 4


def test_heuristic_judge_is_the_projects_heuristic(small_dataset) -> None:
    """The vectorised judge equals seren.serengpt.evaluate.heuristic_scores on real candidates."""
    from seren.data import is_positive, load_dataset
    from seren.serengpt.evaluate import heuristic_scores

    ds = load_dataset(small_dataset)
    items = ds.items.reset_index(drop=True)
    cats = items["category"].astype(str)
    subs = sorted(cats.unique())
    sub_of = cats.map({c: i for i, c in enumerate(subs)}).to_numpy()
    tops = sorted({c.split("/")[0] for c in subs})
    top_of_sub = np.array([tops.index(c.split("/")[0]) for c in subs])
    inter = ds.interactions
    users = sorted(inter["user_id"].unique())[:10]
    iid = pd.Index(items["item_id"])
    seen = inter.groupby("user_id")["item_id"].agg(set)
    cands = np.array([[iid.get_loc(i) for i in items["item_id"] if i not in seen[u]][:5] for u in users])
    pos = is_positive(inter).to_numpy()
    pos_count = np.zeros((len(users), len(subs)))
    for r, u in enumerate(users):
        m = (inter["user_id"] == u).to_numpy() & pos
        np.add.at(pos_count[r], sub_of[iid.get_indexer(inter.loc[m, "item_id"])], 1.0)
    ii = iid.get_indexer(inter["item_id"])
    relevance = (np.bincount(ii[pos], minlength=len(items)) + 1.0) / (np.bincount(ii, minlength=len(items)) + 2.0)
    got = heuristic_matrix(pos_count, top_of_sub, sub_of, cands, relevance)
    frame = pd.DataFrame(
        [(u, items["item_id"][c]) for u, row in zip(users, cands, strict=True) for c in row],
        columns=["user_id", "item_id"],
    )
    np.testing.assert_allclose(got.ravel(), heuristic_scores(ds, frame), rtol=1e-9)
