"""Metrics against closed-form values on tiny hand-built fixtures (RecBole / Recommenders style)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from seren import metrics as M

RANKED = ["a", "b", "c", "d", "e"]
RELEVANT = {"b", "d", "z"}  # z is relevant but never ranked


def test_hit_precision_recall():
    assert M.hit_at_k(RANKED, RELEVANT, 1) == 0.0
    assert M.hit_at_k(RANKED, RELEVANT, 2) == 1.0
    assert M.precision_at_k(RANKED, RELEVANT, 4) == pytest.approx(2 / 4)
    assert M.recall_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 3)
    assert M.recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 3)
    assert M.recall_at_k(RANKED, set(), 5) == 0.0
    with pytest.raises(ValueError):
        M.hit_at_k(RANKED, RELEVANT, 0)


def test_ndcg_binary_and_graded():
    # relevant at ranks 2 and 4; ideal puts 3 relevant items at ranks 1..3 (k=5)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert M.ndcg_at_k(RANKED, RELEVANT, 5) == pytest.approx(dcg / idcg)
    # k=3: only rank 2 counts; ideal is 3 items in 3 slots
    assert M.ndcg_at_k(RANKED, RELEVANT, 3) == pytest.approx((1 / math.log2(3)) / idcg)
    # perfect ranking is 1, no relevant items is 0
    assert M.ndcg_at_k(["b", "d"], {"b", "d"}, 2) == pytest.approx(1.0)
    assert M.ndcg_at_k(RANKED, set(), 3) == 0.0
    graded = {"a": 1.0, "c": 3.0}
    dcg_g = 1.0 / math.log2(2) + 3.0 / math.log2(4)
    idcg_g = 3.0 / math.log2(2) + 1.0 / math.log2(3)
    assert M.ndcg_at_k(RANKED, graded, 3) == pytest.approx(dcg_g / idcg_g)


def test_mrr():
    assert M.mrr(RANKED, RELEVANT) == pytest.approx(1 / 2)
    assert M.mrr(RANKED, {"e"}) == pytest.approx(1 / 5)
    assert M.mrr(RANKED, {"q"}) == 0.0


def test_rank_by_score_averages_users_with_positives():
    df = pd.DataFrame(
        {
            "user_id": ["u1"] * 3 + ["u2"] * 3 + ["u3"] * 2,
            "item_id": ["a", "b", "c", "a", "b", "c", "a", "b"],
            "label": [0, 1, 0, 1, 0, 0, 0, 0],  # u3 has no positive: skipped
            "score": [0.9, 0.8, 0.1, 0.95, 0.3, 0.2, 0.5, 0.4],
        }
    )
    out = M.rank_by_score(df, ks=(1, 3))
    assert out["ranked_users"] == 2
    assert out["hit@1"] == pytest.approx((0 + 1) / 2)
    assert out["ndcg@3"] == pytest.approx((1 / math.log2(3) + 1.0) / 2)
    assert out["mrr"] == pytest.approx((0.5 + 1.0) / 2)


def test_rank_by_score_ties_are_not_resolved_by_row_order():
    # positives listed first with a constant score: a stable sort would give a perfect Hit@1
    n = 200
    df = pd.DataFrame(
        {
            "user_id": [f"u{i // 4}" for i in range(n)],
            "item_id": [f"i{i % 4}" for i in range(n)],
            "label": [1 if i % 4 == 0 else 0 for i in range(n)],
            "score": 0.5,
        }
    )
    hit1 = M.rank_by_score(df, ks=(1,))["hit@1"]
    assert 0.1 < hit1 < 0.45  # chance is 1/4


def test_novelty_self_information():
    counts = {"pop": 8, "mid": 2, "rare": 1}
    recs = {"u1": ["pop", "rare"], "u2": ["mid", "new"]}
    expected = (-math.log2(8 / 8) - math.log2(1 / 8) - math.log2(2 / 8) - math.log2(1 / 8)) / 4
    assert M.novelty(recs, counts, n_users=8) == pytest.approx(expected)


def test_category_similarity_and_diversity():
    cats = {"a": "Books/SciFi", "b": "Books/SciFi", "c": "Books/Cooking", "d": "Music/Jazz"}
    sim = M.category_similarity_fn(cats)
    assert sim("a", "b") == 1.0 and sim("a", "c") == 0.5 and sim("a", "d") == 0.0 and sim("a", "x") == 0.0
    # pairs: ab=1, ac=.5, ad=0, bc=.5, bd=0, cd=0 -> mean 2/6
    assert M.intra_list_diversity(["a", "b", "c", "d"], sim) == pytest.approx(1 - 2 / 6)
    recs = {"u1": ["a", "b"], "u2": ["a", "d"], "u3": ["c"]}  # u3 too short, skipped
    assert M.diversity(recs, sim) == pytest.approx((0.0 + 1.0) / 2)


def test_cosine_similarity_matches_category_one_hot():
    # one-hot [Books, Music, Books/SciFi, Books/Cooking, Music/Jazz]
    feats = {"a": [1, 0, 1, 0, 0], "c": [1, 0, 0, 1, 0], "d": [0, 1, 0, 0, 1]}
    sim = M.cosine_similarity_fn(feats)
    assert sim("a", "c") == pytest.approx(0.5)
    assert sim("a", "d") == pytest.approx(0.0)
    assert sim("a", "a") == pytest.approx(1.0)


def test_serendipity_recommenders_formula():
    cats = {"h1": "Books/SciFi", "h2": "Books/Cooking", "x": "Books/SciFi", "y": "Music/Jazz"}
    sim = M.category_similarity_fn(cats)
    hist = ["h1", "h2"]
    # unexpectedness: x -> 1 - mean(1, .5) = .25 ; y -> 1 - mean(0, 0) = 1
    assert M.unexpectedness("x", hist, sim) == pytest.approx(0.25)
    assert M.unexpectedness("y", hist, sim) == pytest.approx(1.0)
    assert M.unexpectedness("y", [], sim) == 1.0
    # relevance: only y relevant -> user serendipity mean(.25*0, 1*1) = .5
    assert M.user_serendipity(["x", "y"], hist, {"y"}, sim) == pytest.approx(0.5)
    graded = {"x": 1.0, "y": 0.5}
    assert M.user_serendipity(["x", "y"], hist, graded, sim) == pytest.approx((0.25 + 0.5) / 2)
    recs = {"u1": ["x", "y"], "u2": ["x"]}
    rel = {"u1": {"y"}, "u2": {"x"}}
    hists = {"u1": hist, "u2": ["h1"]}  # u2: x same sub as h1 -> unexpectedness 0
    assert M.serendipity(recs, hists, rel, sim) == pytest.approx((0.5 + 0.0) / 2)


def test_coverage_and_distributional_coverage():
    recs = {"u1": ["a", "b"], "u2": ["a", "zz"]}  # zz is not in the catalogue
    assert M.coverage(recs, ["a", "b", "c", "d"]) == pytest.approx(2 / 4)
    # a twice, b once, zz once -> p = .5, .25, .25 -> 1.5 bits
    assert M.distributional_coverage(recs) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        M.coverage(recs, [])


def test_personalization():
    same = {"u1": ["a", "b"], "u2": ["a", "b"], "u3": ["b", "a"]}
    assert M.personalization(same) == pytest.approx(0.0)
    disjoint = {"u1": ["a", "b"], "u2": ["c", "d"]}
    assert M.personalization(disjoint) == pytest.approx(1.0)
    # u1={a,b}, u2={a,c}: cos = 1/2 ; u1-u3={d}: 0 ; u2-u3: 0 -> 1 - (0.5/3)
    mixed = {"u1": ["a", "b"], "u2": ["a", "c"], "u3": ["d"]}
    assert M.personalization(mixed) == pytest.approx(1 - 0.5 / 3)
