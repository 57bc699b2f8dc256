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
