"""The judgment table contract (schema, readers/writers, windows, feedback) and the gates; no Evidently here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitoring.gates import Gates, evaluate
from monitoring.judgments import (
    JUDGMENT_COLUMNS,
    append_judgments,
    attach_feedback,
    build_judgments,
    drift_frame,
    in_window,
    load_judgments,
    parse_end,
    parse_window,
    validate_judgments,
    write_reference,
)
from seren.errors import ConfigError, DataError

T0 = pd.Timestamp("2025-03-01T12:00:00Z")


def _judgments(n: int = 4, start: pd.Timestamp = T0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [f"u{i % 2}" for i in range(n)],
            "item_id": [f"i{i}" for i in range(n)],
            "score": np.linspace(0.1, 0.9, n),
            "judged_serendipitous": [int(s >= 0.5) for s in np.linspace(0.1, 0.9, n)],
            "profile_tokens": [100 + 10 * (i % 2) for i in range(n)],
            "category_entropy": [1.0 + (i % 2) for i in range(n)],
            "candidate_popularity": [0.01 * (i + 1) for i in range(n)],
            "event_timestamp": [start + pd.Timedelta(hours=i) for i in range(n)],
        }
    )


def test_schema_coerces_and_names_every_violation() -> None:
    df = _judgments().astype({"profile_tokens": float, "judged_serendipitous": str})
    out = validate_judgments(df)
    assert list(out.columns) == list(JUDGMENT_COLUMNS)
    assert out["profile_tokens"].dtype == np.int64 and out["judged_serendipitous"].tolist() == [0, 0, 1, 1]
    assert str(out["event_timestamp"].dt.tz) == "UTC"

    with pytest.raises(DataError) as err:
        validate_judgments(_judgments().drop(columns=["score", "candidate_popularity"]), "nearline")
    line = err.value.line()
    assert "nearline: judgments lack column(s) score, candidate_popularity" in line and "\n" not in line

    bad = _judgments().assign(score=[0.2, 1.5, 0.3, 0.4], judged_serendipitous=[0, 2, 1, 1], profile_tokens=-1)
    with pytest.raises(DataError) as err:
        validate_judgments(bad)
    line = err.value.line()
    for column in ("'score'", "'judged_serendipitous'", "'profile_tokens'"):
        assert column in line

    empty = validate_judgments(_judgments().iloc[:0])
    assert empty.empty and str(empty["event_timestamp"].dtype) == "datetime64[ns, UTC]"


def test_parts_folder_reference_file_and_missing_paths(tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    append_judgments(_judgments(4), parts, run_id="run-1")
    append_judgments(_judgments(2, T0 + pd.Timedelta(days=1)), parts, run_id="run-2")
    append_judgments(_judgments(2, T0 + pd.Timedelta(days=1)), parts, run_id="run-2")  # re-run: replaces its part
    loaded = load_judgments(parts)
    assert len(loaded) == 6 and loaded["event_timestamp"].is_monotonic_increasing
    assert sorted(p.name for p in parts.iterdir()) == ["judgments-run-1.parquet", "judgments-run-2.parquet"]

    ref = write_reference(_judgments(), tmp_path / "ref.parquet")
    pd.testing.assert_frame_equal(load_judgments(ref), validate_judgments(_judgments()))
    _judgments().to_csv(tmp_path / "ref.csv", index=False)
    assert len(load_judgments(tmp_path / "ref.csv")) == 4

    with pytest.raises(DataError, match="no rows"):
        write_reference(_judgments().iloc[:0], tmp_path / "empty.parquet")
    assert not (tmp_path / "empty.parquet").exists()
    with pytest.raises(ConfigError, match="reference judgments not found at") as err:
        load_judgments(tmp_path / "nope.parquet", "reference")
    assert "--reference" in err.value.line()
    (tmp_path / "garbage.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="cannot read judgments"):
        load_judgments(tmp_path / "garbage.parquet")
    (tmp_path / "no_parts").mkdir()
    assert load_judgments(tmp_path / "no_parts").empty  # nearline has not written yet: empty, not an error
    with pytest.raises(ConfigError, match="safe file name"):
        append_judgments(_judgments(), parts, run_id="../escape")


def test_windows() -> None:
    assert parse_window("1d") == pd.Timedelta(days=1)
    assert parse_window("90m") == pd.Timedelta(minutes=90)
    assert parse_window("12H") == pd.Timedelta(hours=12)
    assert parse_window("2w") == pd.Timedelta(weeks=2)
    assert parse_window("all") is None and parse_window("") is None
    for bad in ("0d", "yesterday", "-1d", "1y"):
        with pytest.raises(ConfigError, match="not a positive duration"):
            parse_window(bad)

    df = validate_judgments(_judgments(6))  # one judgment per hour from T0
    end = T0 + pd.Timedelta(hours=5)
    assert parse_end("latest", df) == end
    assert parse_end("2025-03-01T17:00") == end  # naive = UTC
    assert abs(parse_end("now") - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(minutes=1)
    with pytest.raises(ConfigError, match="is not a time"):
        parse_end("soon")
    # (end - 2h, end]: the start is excluded, the end included
    assert in_window(df, pd.Timedelta(hours=2), end)["item_id"].tolist() == ["i4", "i5"]
    assert len(in_window(df, None, end - pd.Timedelta(hours=1))) == 5
    assert in_window(df, pd.Timedelta(hours=1), T0 - pd.Timedelta(days=1)).empty


def test_feedback_is_a_later_positive_within_the_horizon() -> None:
    j = validate_judgments(_judgments(4))  # (u0,i0)@T0, (u1,i1)@T0+1h, (u0,i2)@T0+2h, (u1,i3)@T0+3h
    day = pd.Timedelta(days=1)
    inter = pd.DataFrame(
        {
            "user_id": ["u0", "u1", "u0", "u0", "u1"],
            "item_id": ["i0", "i1", "i2", "i2", "i9"],
            "event": ["click", "skip", "purchase", "like", "click"],
            "rating": [np.nan, np.nan, np.nan, np.nan, np.nan],
            # i0: clicked a day after its judgment -> 1; i1: only a skip -> 0; i2: liked *before* its judgment
            # and bought 8 days after (outside the 7d horizon) -> 0; i3: nothing, and the log runs past it -> 0
            "timestamp": [T0 + day, T0 + day, T0 + 8 * day + pd.Timedelta(hours=2), T0, T0 + 2 * day],
        }
    )
    out = attach_feedback(j, inter, horizon=pd.Timedelta(days=7))
    assert out["feedback"].tolist() == [1, 0, 0, 0]
    assert out["feedback"].dtype == "Int64"
    assert attach_feedback(j, inter, horizon=None)["feedback"].tolist() == [1, 0, 1, 0]
    # a log that ends before a judgment says nothing about it: unknown, not 0
    early = inter.assign(timestamp=T0 + pd.Timedelta(minutes=30))
    assert attach_feedback(j, early)["feedback"].isna().tolist() == [False, True, True, True]
    # feedback already recorded (e.g. validation labels) wins over the log
    kept = attach_feedback(j.assign(feedback=pd.array([0, 1, pd.NA, pd.NA], dtype="Int64")), inter)
    assert kept["feedback"].tolist() == [0, 1, 0, 0]


def test_user_level_columns_count_once_per_user() -> None:
    frame = drift_frame(validate_judgments(_judgments(6)))
    assert frame["score"].notna().all()  # judgment-level: every row
    # user-level: one row per user (its latest judgment), so two users give two samples
    assert frame["profile_tokens"].notna().sum() == 2 and frame["category_entropy"].notna().sum() == 2
    assert sorted(frame["profile_tokens"].dropna()) == [100.0, 110.0]


def test_gates_evaluate_and_reject_bad_thresholds() -> None:
    g = Gates()
    rows = evaluate(g, drift_share=0.4, score_psi=0.25, score_ks_pvalue=0.01, precision=None)
    by = {r["name"]: r for r in rows}
    assert by["drift_share"]["passed"] and not by["score_psi"]["passed"]
    assert by["score_ks_pvalue"]["passed"]  # p == threshold passes (fail only when p < threshold)
    assert (
        by["precision_drop"]["passed"]
        and "no feedback for the reference and current" in by["precision_drop"]["skipped"]
    )
    rows = evaluate(g, 0.5, 0.1, 0.5, {"reference": 0.8, "current": 0.65})
    by = {r["name"]: r for r in rows}
    assert not by["drift_share"]["passed"]  # Evidently's rule: drifted when share >= threshold
    assert not by["precision_drop"]["passed"] and math.isclose(by["precision_drop"]["value"], 0.15)
    assert evaluate(g, 0.0, 0.0, 0.9, {"reference": 0.8, "current": 0.75})[3]["passed"]
    nan_row = evaluate(g, 0.0, None, 0.9, None)[1]
    assert nan_row["passed"] and nan_row["skipped"]

    assert Gates.from_dict({"max_score_psi": 0.3}).max_score_psi == 0.3
    with pytest.raises(ConfigError, match="known gates: max_drift_share"):
        Gates.from_dict({"max_psi": 0.3})
    with pytest.raises(ConfigError, match="gate max_drift_share"):
        Gates.from_dict({"max_drift_share": 1.5})


def test_build_judgments_from_scores_profiles_and_popularity() -> None:
    scores = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"], "score": [0.7, 0.2, 0.5]})
    scores["label"] = [1, 0, 0]
    profiles = pd.DataFrame({"user_id": ["u1", "u2"], "profile_tokens": [120, 64], "category_entropy": [1.5, 0.0]})
    pop = pd.DataFrame({"item_id": ["a", "b"], "popularity": [0.02, 0.001]})
    out = build_judgments(scores, profiles, pop, threshold=0.5, judged_at=T0)
    assert out["judged_serendipitous"].tolist() == [1, 0, 1]  # score >= threshold
    assert out["profile_tokens"].tolist() == [120, 120, 64] and out["candidate_popularity"].tolist() == [
        0.02,
        0.001,
        0.02,
    ]
    assert out["feedback"].tolist() == [1, 0, 0] and (out["event_timestamp"] == T0).all()
    with pytest.raises(DataError, match="'category_entropy': 1 empty value"):
        build_judgments(scores.assign(user_id=["u1", "u1", "u3"]), profiles, pop)
