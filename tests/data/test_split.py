from __future__ import annotations

import pandas as pd
import pytest

from seren.data.split import chronological_split
from seren.errors import ConfigError, DataError


def _assert_leak_free(train: pd.DataFrame, val: pd.DataFrame, test: pd.DataFrame) -> None:
    t_max = train.groupby("user_id")["timestamp"].max()
    v_min, v_max = val.groupby("user_id")["timestamp"].min(), val.groupby("user_id")["timestamp"].max()
    s_min = test.groupby("user_id")["timestamp"].min()
    assert (v_min > t_max.reindex(v_min.index)).all()
    before_test = pd.concat([t_max, v_max], axis=1).max(axis=1)
    assert (s_min > before_test.reindex(s_min.index)).all()


def test_split_is_leak_free_and_complete(medium_ds):
    inter = medium_ds.interactions
    train, val, test = chronological_split(inter, val_frac=0.1, test_frac=0.2)
    assert len(train) + len(val) + len(test) == len(inter)
    merged = pd.concat([train, val, test]).sort_values(["user_id", "timestamp"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(merged, inter.sort_values(["user_id", "timestamp"]).reset_index(drop=True))
    _assert_leak_free(train, val, test)
    assert set(train["user_id"]) == set(inter["user_id"])
    assert 0.17 < len(test) / len(inter) < 0.23 and 0.07 < len(val) / len(inter) < 0.13


def test_boundary_ties_go_to_the_earlier_split():
    ts = pd.to_datetime([1, 2, 3, 4, 5, 6, 7, 8, 8, 8], unit="s", utc=True)
    df = pd.DataFrame({"user_id": "a", "item_id": [f"i{k}" for k in range(10)], "timestamp": ts})
    train, val, test = chronological_split(df, val_frac=0.2, test_frac=0.2)
    # positions 8-9 would be test, but they tie with position 7 (val): all three stay in val
    assert list(train["item_id"]) == [f"i{k}" for k in range(6)]
    assert list(val["item_id"]) == ["i6", "i7", "i8", "i9"]
    assert test.empty
    _assert_leak_free(train, val, test)


def test_ties_across_train_boundary_and_short_histories():
    df = pd.DataFrame(
        {
            "user_id": ["a"] * 5 + ["b"] * 3 + ["c"],
            "item_id": list("abcdefghi"),
            "timestamp": pd.to_datetime([1, 1, 1, 1, 2, 5, 6, 7, 9], unit="s", utc=True),
        }
    )
    train, val, test = chronological_split(df, val_frac=0.2, test_frac=0.2)
    # a: val would start on a tie with train -> train; b: 3 events -> 1/1/1; c: single event -> train
    assert sorted(train[train.user_id == "a"]["item_id"]) == list("abcd")
    assert list(test[test.user_id == "a"]["item_id"]) == ["e"]
    assert [len(x[x.user_id == "b"]) for x in (train, val, test)] == [1, 1, 1]
    assert list(train[train.user_id == "c"]["item_id"]) == ["i"]
    _assert_leak_free(train, val, test)


def test_unsorted_input_and_string_timestamps():
    df = pd.DataFrame(
        {
            "user_id": ["u"] * 4,
            "item_id": list("dcba"),
            "timestamp": ["2024-01-04", "2024-01-03", "2024-01-02", "2024-01-01"],
        }
    )
    train, _, test = chronological_split(df, val_frac=0.0, test_frac=0.25)
    assert list(test["item_id"]) == ["d"] and list(train["item_id"]) == ["a", "b", "c"]


@pytest.mark.parametrize("fracs", [(0.5, 0.5), (-0.1, 0.1), (0.1, 1.0)])
def test_bad_fractions(fracs):
    df = pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "timestamp": pd.to_datetime([1], unit="s", utc=True)})
    with pytest.raises(ConfigError):
        chronological_split(df, *fracs)


def test_missing_timestamp_column():
    with pytest.raises(DataError, match="timestamp"):
        chronological_split(pd.DataFrame({"user_id": ["u"], "item_id": ["i"]}))
