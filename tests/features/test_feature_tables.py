"""seren.data.features on a hand-built dataset: every statistic checked against its closed form."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from seren.data import Dataset
from seren.data.features import ITEM_FEATURES_COLUMNS, USER_STATS_COLUMNS, build_feature_tables
from seren.errors import DataError

T0 = pd.Timestamp("2024-01-01 12:00", tz="UTC")
DAY = pd.Timedelta(days=1)


@pytest.fixture
def ds() -> Dataset:
    items = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3", "i4"],
            "title": ["One", "Two", "Three", "Four"],
            "text": ["t1", "t2", "t3", "t4"],
            "category": ["A/x", "A/y", "B/z", "B/z"],
            "price": [10.0, 20.0, 30.0, None],
            "popularity": [7.0, None, None, None],
        }
    )
    rows = [
        ("u1", "i1", "click", None, T0),
        ("u1", "i2", "impression", None, T0),
        ("u1", "i2", "like", None, T0 + DAY),
        ("u1", "i3", "purchase", None, T0 + 2 * DAY),
        ("u1", "i4", "skip", None, T0 + 2 * DAY),
        ("u2", "i3", "rating", 5.0, T0 + 3 * DAY),
        ("u2", "i1", "rating", 2.0, T0 + 3 * DAY),
        ("u1", "i1", "click", None, T0 + 5 * DAY),  # after the as_of used below
    ]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "event", "rating", "timestamp"])
    return Dataset(inter, items).validate()


def test_user_stats_closed_form(ds: Dataset) -> None:
    as_of = T0 + 3.5 * DAY
    users = build_feature_tables(ds, as_of)["user_stats"].set_index("user_id")
    assert list(users.reset_index().columns) == list(USER_STATS_COLUMNS)
    u1, u2 = users.loc["u1"], users.loc["u2"]
    # u1: the day-5 click is in the future of as_of and must not count
    assert (u1.n_events, u1.n_positive, u1.n_skips, u1.n_items, u1.active_days) == (5, 3, 1, 4, 3)
    assert u1.positive_rate == pytest.approx(0.6)
    assert u1.days_since_last_event == pytest.approx(1.5)
    assert u1.category_entropy == pytest.approx(math.log(3), rel=1e-6)  # one positive in each of 3 categories
    assert u1.top_categories == "A/x,A/y,B/z"  # ties broken by name
    assert u1.price_band == "mid"  # median positive price 20 between catalogue tertiles 16.7 and 23.3
    # u2: a rating >= 4 is positive, a rating of 2 is not
    assert (u2.n_events, u2.n_positive, u2.category_entropy, u2.top_categories, u2.price_band) == (
        2,
        1,
        0.0,
        "B/z",
        "high",
    )
    assert (users["event_timestamp"] == as_of).all()
    assert users["created"].notna().all()


def test_default_as_of_is_last_event(ds: Dataset) -> None:
    users = build_feature_tables(ds)["user_stats"].set_index("user_id")
    assert users.loc["u1", "n_events"] == 6
    assert users.loc["u1", "days_since_last_event"] == pytest.approx(0.0)
    assert (users["event_timestamp"] == T0 + 5 * DAY).all()


def test_item_features(ds: Dataset) -> None:
    items = build_feature_tables(ds, T0 + 3.5 * DAY)["item_features"].set_index("item_id")
    assert list(items.reset_index().columns) == list(ITEM_FEATURES_COLUMNS)
    assert items["n_positive"].to_dict() == {"i1": 1, "i2": 1, "i3": 2, "i4": 0}
    # the catalogue's popularity wins when given; otherwise the share of positives up to as_of (4)
    assert items["popularity"].to_dict() == pytest.approx({"i1": 7.0, "i2": 0.25, "i3": 0.5, "i4": 0.0})
    assert items.loc["i2", "top_category"] == "A" and items.loc["i3", "category"] == "B/z"
    assert math.isnan(items.loc["i4", "price"])


def test_as_of_before_any_event_gives_no_users(ds: Dataset) -> None:
    assert build_feature_tables(ds, T0 - DAY)["user_stats"].empty


def test_empty_interactions_is_a_data_error(ds: Dataset) -> None:
    with pytest.raises(DataError, match="no interactions"):
        build_feature_tables(Dataset(ds.interactions.iloc[:0], ds.items))
