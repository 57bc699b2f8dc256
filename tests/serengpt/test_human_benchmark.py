"""The human-agreement benchmark's own helpers: the feedback line must never read the judged row's own
answer (that would be a leak, not a signal), and cross-validated rows pool within-fold ranks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

_spec = importlib.util.spec_from_file_location(
    "human_agreement_bench", Path(__file__).resolve().parents[2] / "benchmarks" / "human_agreement.py"
)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _rows(labels: list[int]) -> pd.DataFrame:
    # user a: 4 rows, user b: 2 rows, user c: 1 row (no other answers)
    users = ["a", "a", "a", "a", "b", "b", "c"]
    return pd.DataFrame({"user_id": users, "label": labels, "profile_text": [f"profile {u}" for u in users]})


def test_feedback_line_never_reads_the_judged_rows_own_answer():
    c = _rows([1, 0, 0, 1, 0, 1, 1])
    lines = bench.feedback_profiles(c)["profile_text"]
    for i in range(len(c)):
        flipped = c.copy()
        flipped.loc[i, "label"] = 1 - flipped.loc[i, "label"]
        assert bench.feedback_profiles(flipped)["profile_text"][i] == lines[i]  # its own answer changes nothing
    assert lines[4] == "profile b\nThis user is often pleasantly surprised: most other movies were pleasant surprises."
    assert lines[5] == "profile b\nThis user is rarely surprised: no other movie was a pleasant surprise."
    assert lines[0] == "profile a\nThis user is sometimes pleasantly surprised."
    assert lines[6] == "profile c"  # no other answer: no line
    # the other rows' answers do move it
    other = c.copy()
    other.loc[5, "label"] = 0
    assert bench.feedback_profiles(other)["profile_text"][4] != lines[4]


def test_within_fold_ranks_are_percentiles_inside_each_fold():
    scores = np.array([10.0, 20.0, 30.0, 0.1, 0.3, 0.2])
    folds = np.array([0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(bench.within_fold_ranks(scores, folds), [1 / 3, 2 / 3, 1.0, 1 / 3, 1.0, 2 / 3])


def test_learned_cv_scores_each_fold_without_its_own_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    y = (x[:, 0] + 0.5 * rng.normal(size=60) > 0).astype(int)
    folds = np.repeat([0, 1, 2], 20)
    out = bench.learned_cv(x, y, folds)
    flipped = y.copy()
    flipped[folds == 1] = 1 - flipped[folds == 1]  # fold 1's own labels change nothing of fold 1's scores
    np.testing.assert_allclose(bench.learned_cv(x, flipped, folds)[folds == 1], out[folds == 1])
    assert not np.allclose(bench.learned_cv(x, flipped, folds)[folds == 0], out[folds == 0])  # they train fold 0


def test_share_logit_is_symmetric_and_clipped():
    z = bench.share_logit(np.array([0.0, 0.25, 0.5, 0.75, 1.0]))
    np.testing.assert_allclose(z, [np.log(0.05 / 0.95), np.log(1 / 3), 0.0, np.log(3), np.log(0.95 / 0.05)])


def test_label_anatomy_counts_rows_that_movielens_brought_to_the_user():
    labels = pd.DataFrame(
        {
            "serendipitous": [True, True, False, False, False, False],
            "s1": [5.0, 2.0, 4.0, 1.0, np.nan, 3.0],
            "s2": [1.0, 4.0, 1.0, 2.0, 5.0, 3.0],
        }
    )
    # serendipitous: both via MovieLens; others: row 2 (s1 4) and row 4 (s2 5) of 4; NA and 3 are not above 3
    assert bench.label_anatomy(labels) == {
        "n_serendipitous": 2,
        "share_via_movielens_serendipitous": 1.0,
        "share_via_movielens_other": 0.5,
    }
