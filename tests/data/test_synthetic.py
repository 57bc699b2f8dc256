from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seren.data import is_positive, load_dataset, save_dataset
from seren.data.catalogue import APPEAL_PHRASES
from seren.data.synthetic import SyntheticConfig, generate
from seren.errors import ConfigError


def _tables(ds):
    return {n: getattr(ds, n) for n in ("interactions", "items", "users", "labels")}


def test_same_seed_gives_identical_frames():
    a, b = (
        generate(SyntheticConfig(n_users=60, n_items=120, seed=3)),
        generate(SyntheticConfig(n_users=60, n_items=120, seed=3)),
    )
    for name, df in _tables(a).items():
        pd.testing.assert_frame_equal(df, getattr(b, name), obj=name)
    assert a.meta == b.meta


def test_different_seed_gives_different_data():
    a, b = (
        generate(SyntheticConfig(n_users=60, n_items=120, seed=3)),
        generate(SyntheticConfig(n_users=60, n_items=120, seed=4)),
    )
    assert not a.interactions[["user_id", "item_id"]].equals(b.interactions[["user_id", "item_id"]])
    assert not a.items["text"].equals(b.items["text"])
    assert not a.users["curiosity"].equals(b.users["curiosity"])


def test_roundtrip_through_disk_is_schema_valid(small_dataset):
    ds = load_dataset(small_dataset)  # validates every table and the item references
    assert {"interactions", "items", "users", "labels"} <= set(ds.meta["tables"])
    assert ds.meta["seed"] == 7 and ds.meta["config"]["n_users"] == 80
    assert ds.interactions["user_id"].nunique() == 80
    assert set(ds.labels["source"]) == {"ground_truth"}
    assert set(ds.users.columns) >= {"user_id", "visible_interests", "hidden_interests", "curiosity"}


def test_timestamps_strictly_increase_per_user(medium_ds):
    i = medium_ds.interactions
    d = i.groupby("user_id")["timestamp"].diff().dropna()
    assert (d > pd.Timedelta(0)).all()
    span = i["timestamp"].max() - i["timestamp"].min()
    assert pd.Timedelta(days=40) < span <= pd.Timedelta(days=61)


def test_catalogue_text_carries_category_and_appeal(medium_ds):
    items = medium_ds.items
    assert items["category"].str.fullmatch(r"[^/]+/[^/]+").all()
    assert items["category"].nunique() == 8 * 5
    top = items["category"].str.split("/").str[0]
    sub = items["category"].str.split("/").str[1]
    assert all(s in t for s, t in zip(sub, items["text"], strict=True))
    assert all(f"from {tp}" in t for tp, t in zip(top, items["text"], strict=True))
    for level, phrases in APPEAL_PHRASES.items():
        texts = items.loc[items["appeal"] == level, "text"]
        assert texts.map(lambda t, p=phrases: any(t.startswith(x) for x in p)).all(), level
    # price bands differ by top category (Tech gadgets cost more than Music records)
    band = items.groupby(top)["price"].max()
    assert band["Tech"] > band["Music"]
    # popularity is long-tailed: the top 10% of items get a clearly outsized share of exposures
    pop = np.sort(items["popularity"].to_numpy())[::-1]
    assert pop[: len(pop) // 10].sum() > 0.25 * pop.sum()


def test_hidden_interests_are_unseen_siblings(medium_ds):
    for vis, hid in zip(medium_ds.users["visible_interests"], medium_ds.users["hidden_interests"], strict=True):
        v, h = vis.split(","), [x for x in hid.split(",") if x]
        assert 2 <= len(v) <= 3 and 1 <= len(h) <= 2
        assert not set(v) & set(h)
        v_tops = {x.split("/")[0] for x in v}
        assert all(x.split("/")[0] in v_tops for x in h)


def _kind_frame(ds) -> pd.DataFrame:
    i = ds.interactions.merge(ds.items[["item_id", "category"]], on="item_id").merge(ds.users, on="user_id")
    vis = [c in v.split(",") for c, v in zip(i["category"], i["visible_interests"], strict=True)]
    hid = [c in h.split(",") for c, h in zip(i["category"], i["hidden_interests"], strict=True)]
    same_top = [
        c.split("/")[0] in {x.split("/")[0] for x in v.split(",")}
        for c, v in zip(i["category"], i["visible_interests"], strict=True)
    ]
    i["kind"] = np.select([vis, hid, same_top], ["visible", "hidden", "sibling"], "unrelated")
    i["pos"] = is_positive(i)
    return i


def test_hidden_interest_items_engage_far_more_than_unrelated(medium_ds):
    i = _kind_frame(medium_ds)
    rate = i.groupby("kind")["pos"].mean()
    n = i["kind"].value_counts()
    assert n["hidden"] > 500 and n["unrelated"] > 500  # enough exposures for the comparison to mean something
    assert rate["hidden"] > 4 * rate["unrelated"]
    assert rate["visible"] > rate["sibling"] > rate["unrelated"]
    # curiosity scales hidden-interest engagement
    h = i[i["kind"] == "hidden"]
    curious = h["curiosity"] > h["curiosity"].median()
    assert h.loc[curious, "pos"].mean() > h.loc[~curious, "pos"].mean() + 0.1


def test_labels_share_and_semantics(medium_ds):
    lab = medium_ds.labels
    share = lab["serendipitous"].mean()
    assert 0.2 <= share <= 0.4
    assert not lab.duplicated(["user_id", "item_id"]).any()
    # serendipitous = unexpected and relevant; "relevant but expected" negatives are present
    assert (lab["serendipitous"] == (lab["unexpected"] & lab["relevant"])).all()
    expected_pos = lab[(lab["unexpected"] == 0) & (lab["relevant"] == 1)]
    assert len(expected_pos) > 0.1 * len(lab)
    assert ((lab["unexpected"] == 1) & (lab["relevant"] == 0)).sum() > 0.1 * len(lab)
    # serendipitous items come from outside the user's earlier positive history
    i = medium_ds.interactions.merge(medium_ds.items[["item_id", "category"]], on="item_id")
    pos = i[is_positive(i)]
    users = medium_ds.users.set_index("user_id")
    for row in lab[lab["serendipitous"] == 1].head(50).itertuples():
        cat = medium_ds.items.set_index("item_id").at[row.item_id, "category"]
        before = pos[(pos["user_id"] == row.user_id) & (pos["timestamp"] < row.timestamp)]
        assert cat not in set(before["category"])
        assert cat not in users.at[row.user_id, "visible_interests"].split(",")
    # the ground truth is predictable from a profile: most serendipitous labels are hidden interests
    lk = lab.merge(medium_ds.items[["item_id", "category"]], on="item_id").merge(medium_ds.users, on="user_id")
    hidden = [c in h.split(",") for c, h in zip(lk["category"], lk["hidden_interests"], strict=True)]
    lk["hidden"] = hidden
    assert lk.loc[lk["serendipitous"] == 1, "hidden"].mean() > 0.4
    assert lk.loc[lk["hidden"], "serendipitous"].mean() > 2 * lk.loc[~lk["hidden"], "serendipitous"].mean()


def _entropy(cats: pd.Series) -> float:
    p = cats.value_counts(normalize=True).to_numpy()
    return float(-(p * np.log(p)).sum())


def test_feedback_loop_concentrates_exposure_over_time(medium_ds):
    i = medium_ds.interactions.merge(medium_ds.items[["item_id", "category"]], on="item_id")
    i["step"] = i.groupby("user_id").cumcount()
    n = i.groupby("user_id")["step"].transform("max") + 1
    early = i[i["step"] < n / 3].groupby("user_id")["category"].agg(_entropy)
    late = i[i["step"] >= 2 * n / 3].groupby("user_id")["category"].agg(_entropy)
    assert late.mean() < early.mean() - 0.1
    assert (late < early).mean() > 0.6


def test_shift_moves_the_population():
    base = generate(SyntheticConfig(n_users=300, n_items=400, seed=5))
    shifted = generate(SyntheticConfig(n_users=300, n_items=400, seed=5, shift=1.0))
    assert shifted.users["curiosity"].mean() > base.users["curiosity"].mean() + 0.1
    tops = lambda ds: ds.users["visible_interests"].str.split(",").explode().str.split("/").str[0]  # noqa: E731
    last_tops = set(list(dict.fromkeys(base.items["category"].str.split("/").str[0]))[-3:])
    assert tops(shifted).isin(last_tops).mean() > tops(base).isin(last_tops).mean() + 0.1


@pytest.mark.parametrize(
    "kw", [{"n_users": 0}, {"n_top": 99}, {"n_sub": 0}, {"n_items": 3}, {"shift": -1.0}, {"warmup_frac": 1.0}]
)
def test_invalid_config_is_a_config_error(kw):
    with pytest.raises(ConfigError):
        SyntheticConfig(**kw)


def test_save_is_atomic_and_replaces(tmp_path):
    out = tmp_path / "ds"
    save_dataset(generate(SyntheticConfig(n_users=20, n_items=60, seed=1)), out)
    save_dataset(generate(SyntheticConfig(n_users=30, n_items=60, seed=2)), out)
    assert load_dataset(out).users.shape[0] == 30


def test_degenerate_catalogue_still_valid():
    ds = generate(SyntheticConfig(n_users=5, n_items=2, n_top=1, n_sub=1, seed=0))
    assert ds.items["category"].nunique() == 1
    # the only subcategory is everyone's visible interest: nothing can be unexpected, so no labels
    assert ds.labels is None
    assert (ds.users["hidden_interests"] == "").all() and len(ds.interactions) > 0
