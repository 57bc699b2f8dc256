"""Evidently's recsys metrics vs `seren.metrics` vs closed-form values on a hand-built fixture.

Items carry feature vectors a=(1,0,0) b=(0,1,0) c=(0,0,1) d=(1,1,0) e=(1,0,1) f=(0,1,1), so the
cosine similarities are 0, 1/sqrt(2) or 1/2:
    s(a,d)=s(a,e)=s(b,d)=s(c,e)=s(b,f)=s(c,f)=1/r2, s(d,e)=s(d,f)=s(e,f)=1/2, all other pairs 0.
Training positives (histories): u1 [a, b], u2 [c, d], u3 [a], u4 [e, b, f]  -> 4 users;
users per item: a 2, b 2, c 1, d 1, e 1, f 1.
Top-3 lists (by score) and relevant items:  u1 [c, d, e] {d};  u2 [a, b, e] {a, e};  u3 [b, c, d] {}.

Closed forms (derivations in each assertion's comment); where Evidently defines a metric
differently from seren.metrics, the test asserts the exact relation documented in monitoring/recsys.py.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from monitoring import evidently_api as ev
from monitoring.recsys import evidently_serendipity, item_feature_table
from seren import metrics as M

R2 = math.sqrt(2.0)
FEATURES = {
    "a": (1, 0, 0),
    "b": (0, 1, 0),
    "c": (0, 0, 1),
    "d": (1, 1, 0),
    "e": (1, 0, 1),
    "f": (0, 1, 1),
}
HISTORY = {"u1": ["a", "b"], "u2": ["c", "d"], "u3": ["a"], "u4": ["e", "b", "f"]}
RECS = {"u1": ["c", "d", "e"], "u2": ["a", "b", "e"], "u3": ["b", "c", "d"]}
RELEVANT = {"u1": {"d"}, "u2": {"a", "e"}, "u3": set()}
COLS = ["f1", "f2", "f3"]

# closed forms
NOVELTY = (2 + 4 / 3 + 5 / 3) / 3  # -log2(users/4): a,b -> 1; c,d,e -> 2. u1 2, u2 4/3, u3 5/3
DIVERSITY = 1 - ((1 / R2 + 1 / 2) / 3 + (1 / R2) / 3 + (1 / R2) / 3) / 3  # 1 - mean pairwise similarity per list
SEREN_SERENDIPITY = (2.75 - R2) / 9  # u1 (1/3)(1 - 1/r2); u2 (1/3)(1.75 - 1/r2); u3 0
EVIDENTLY_SERENDIPITY = (1.75 - R2) / 2  # u1 1 - 1/r2; u2 1 - [1/(2 r2) + (1/r2 + 1/2)/2]; u3 not counted
PERSONALIZATION = 5 / 9  # overlaps u1-u2 1, u1-u3 2, u2-u3 1 -> mean cosine 4/9
ARP = (1 + 5 / 3 + 4 / 3) / 3  # mean users-per-item of each list, averaged: u1 1, u2 5/3, u3 4/3
COVERAGE = 5 / 6  # a..e recommended out of the 6 trained items
GINI = 1 / 9  # recommendation counts ascending [1,2,2,2,2]: sum((2i-n-1) c_i) / ((n-1) sum c) = 4/36


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for u, items in RECS.items():
        for rank, i in enumerate(items):
            rows.append((u, i, 1.0 - 0.1 * rank, float(i in RELEVANT[u]), *FEATURES[i]))
    recs = pd.DataFrame(rows, columns=["user_id", "item_id", "prediction", "target", *COLS])
    train = pd.DataFrame(
        [(u, i, *FEATURES[i]) for u, items in HISTORY.items() for i in items], columns=["user_id", "item_id", *COLS]
    )
    return recs, train


@pytest.fixture(scope="module")
def evidently_values() -> dict[int, dict[str, float | None]]:
    recs, train = _frames()
    out = {}
    for k in (3, 2):
        _, values = ev.recsys_quality(recs, None, train, None, COLS, k)
        out[k] = values["current"]
    return out


def _seren() -> dict[str, float]:
    sim = M.cosine_similarity_fn(FEATURES)
    counts = {i: sum(i in h for h in HISTORY.values()) for i in FEATURES}
    return {
        "novelty": M.novelty(RECS, counts, n_users=len(HISTORY)),
        "diversity": M.diversity(RECS, sim),
        "serendipity": M.serendipity(RECS, HISTORY, RELEVANT, sim),
        "personalization": M.personalization(RECS),
        "coverage": M.coverage(RECS, catalog=set(FEATURES)),
    }


def test_seren_metrics_match_the_closed_forms() -> None:
    s = _seren()
    assert s["novelty"] == pytest.approx(NOVELTY, abs=1e-9)
    assert s["diversity"] == pytest.approx(DIVERSITY, abs=1e-9)
    assert s["serendipity"] == pytest.approx(SEREN_SERENDIPITY, abs=1e-9)
    assert s["personalization"] == pytest.approx(PERSONALIZATION, abs=1e-9)
    assert s["coverage"] == pytest.approx(COVERAGE, abs=1e-9)


def test_evidently_recsys_metrics_match_the_closed_forms(evidently_values) -> None:
    e = evidently_values[3]
    assert e["novelty"] == pytest.approx(NOVELTY, abs=1e-9)  # equal lists, every item trained: same as seren
    assert e["diversity"] == pytest.approx(DIVERSITY, abs=1e-9)  # k=3: Evidently's (n-1)/2 factor is 1
    assert e["serendipity"] == pytest.approx(EVIDENTLY_SERENDIPITY, abs=1e-9)
    assert e["personalization"] == pytest.approx(PERSONALIZATION, abs=1e-9)
    assert e["popularity_arp"] == pytest.approx(ARP, abs=1e-9)
    assert e["coverage"] == pytest.approx(COVERAGE, abs=1e-9)
    assert e["gini"] == pytest.approx(GINI, abs=1e-9)


def test_documented_relations_between_the_two_definitions(evidently_values) -> None:
    s, e3, e2 = _seren(), evidently_values[3], evidently_values[2]
    sim = M.cosine_similarity_fn(FEATURES)
    # serendipity: E = mean over users with a relevant item of n_u * S_u - (m_u - 1)
    assert evidently_serendipity(RECS, HISTORY, RELEVANT, sim) == pytest.approx(e3["serendipity"], abs=1e-9)
    assert e3["serendipity"] != pytest.approx(s["serendipity"], abs=1e-3)  # the definitions really differ
    # diversity at k=2: Evidently sums the one pair's distance and divides by n=2; seren takes the mean pair
    top2 = {u: items[:2] for u, items in RECS.items()}  # [c,d], [a,b], [b,c]: every pair has similarity 0
    assert M.diversity(top2, sim) == pytest.approx(1.0)
    assert e2["diversity"] == pytest.approx((2 - 1) / 2 * M.diversity(top2, sim), abs=1e-9)
    # personalization at k=2: overlaps u1-u2 0, u1-u3 {c}, u2-u3 {b} -> 1 - (2/2)/3
    assert e2["personalization"] == pytest.approx(M.personalization(top2), abs=1e-9) == pytest.approx(2 / 3)


def test_category_one_hot_features_reproduce_category_similarity() -> None:
    items = pd.DataFrame(
        {
            "item_id": ["x1", "x2", "x3", "x4"],
            "category": ["Books/Poetry", "Books/Poetry", "Books/Sci-Fi", "Music/Jazz"],
        }
    )
    table, cols = item_feature_table(items)
    vec = {r.item_id: np.array([r[c] for c in cols]) for _, r in table.iterrows()}
    cosine = M.cosine_similarity_fn(vec)
    category = M.category_similarity_fn(dict(zip(items["item_id"], items["category"], strict=True)))
    for i in vec:
        for j in vec:
            assert cosine(i, j) == pytest.approx(category(i, j))
    assert category("x1", "x3") == 0.5 and category("x1", "x4") == 0.0


def test_judgment_precision_recall_match_the_confusion_matrix() -> None:
    # current: judged [1,1,0,1,0,0] vs feedback [1,0,1,1,0,0]: TP 2, FP 1, FN 1 -> precision 2/3, recall 2/3
    # reference: judged [1,1,1,1,1,0]: TP 3, FP 2, FN 0 -> precision 3/5, recall 1; unknown feedback ignored
    fb = pd.array([1, 0, 1, 1, 0, 0, pd.NA], dtype="Int64")
    cur = pd.DataFrame({"judged_serendipitous": [1, 1, 0, 1, 0, 0, 1], "feedback": fb})
    ref = pd.DataFrame({"judged_serendipitous": [1, 1, 1, 1, 1, 0, 0], "feedback": fb})
    _, q = ev.judgment_quality(cur, ref)
    assert q["current"]["precision"] == pytest.approx(2 / 3) and q["current"]["recall"] == pytest.approx(2 / 3)
    assert q["reference"]["precision"] == pytest.approx(3 / 5) and q["reference"]["recall"] == pytest.approx(1.0)
    assert q["current"]["rows"] == 6
    # no judgment said "serendipitous": precision is undefined, not sklearn's 0 (or 1 with a single label)
    _, q = ev.judgment_quality(cur.assign(judged_serendipitous=0))
    assert q["current"]["precision"] is None and q["current"]["recall"] == 0.0
