"""SFT / preference / ranking data: split by user, balanced, de-duplicated, atomic save/load."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from seren.data import Dataset
from seren.errors import DataError
from seren.llm import prompts
from seren.profiles import item_text
from seren.serengpt.labeling import (
    EVAL_COLUMNS,
    PREF_COLUMNS,
    SFT_COLUMNS,
    TrainingData,
    build_labels,
    build_training_data,
)


@pytest.fixture(scope="module")
def labels(synth: Dataset, synth_profiles: pd.DataFrame) -> pd.DataFrame:
    return build_labels(synth, synth_profiles)


@pytest.fixture(scope="module")
def td(labels: pd.DataFrame, synth_profiles: pd.DataFrame, synth: Dataset, tok) -> TrainingData:
    return build_training_data(labels, synth_profiles, synth.items, tok, test_frac=0.25, seed=0)


def _users(df: pd.DataFrame) -> set[str]:
    return set(df["user_id"])


def test_columns_and_split_by_user(td: TrainingData, labels: pd.DataFrame) -> None:
    assert list(td.sft_train.columns) == list(td.sft_test.columns) == SFT_COLUMNS
    assert list(td.pref_train.columns) == list(td.pref_test.columns) == PREF_COLUMNS
    assert list(td.eval_candidates.columns) == EVAL_COLUMNS
    train, test = _users(td.sft_train), _users(td.sft_test)
    assert train and test and train.isdisjoint(test)
    assert _users(td.pref_train) == train and _users(td.pref_test) == test
    assert _users(td.eval_candidates) <= test
    assert td.metrics["n_test_users"] == pytest.approx(0.25 * labels["user_id"].nunique(), abs=1)


def test_train_balanced_test_natural(td: TrainingData, labels: pd.DataFrame) -> None:
    assert len(td.sft_train) >= 20
    assert td.sft_train["label"].mean() == 0.5 and td.pref_train["label"].mean() == 0.5
    # the test split is not resampled: every labeled pair of a test user is there
    assert len(td.sft_test) == labels["user_id"].isin(_users(td.sft_test)).sum()
    # down-sampling keeps the most confident majority examples
    majority = 0 if (labels["label"] == 0).sum() > (labels["label"] == 1).sum() else 1
    kept = td.sft_train[td.sft_train["label"] == majority]["confidence"]
    pool = labels[labels["user_id"].isin(_users(td.sft_train)) & (labels["label"] == majority)]["confidence"]
    assert kept.mean() >= pool.mean()


def test_prompts_completions_and_pairs(td: TrainingData, synth_profiles: pd.DataFrame, synth: Dataset, tok) -> None:
    row = td.sft_train.iloc[0]
    prof = synth_profiles[(synth_profiles["user_id"] == row["user_id"]) & (synth_profiles["as_of"] == row["as_of"])]
    profile = prof["profile_text"].item()
    text = item_text(synth.items).set_axis(synth.items["item_id"]).loc[row["item_id"]]
    assert row["prompt"] == prompts.build_prompt(tok, profile, text)
    for df in (td.sft_train, td.sft_test):
        assert (df["completion"].str.split(".").str[0] == df["label"].map({1: "Yes", 0: "No"})).all()
    for df in (td.pref_train, td.pref_test):
        assert (df["chosen"].str.split(".").str[0] == df["label"].map({1: "Yes", 0: "No"})).all()
        assert (df["rejected"] == df["label"].map({1: "No", 0: "Yes"})).all()
    everything = pd.concat([td.sft_train, td.sft_test])
    assert not everything["prompt"].duplicated().any()
    assert not everything[["user_id", "item_id", "as_of"]].duplicated().any()


def test_eval_candidates(td: TrainingData) -> None:
    g = td.eval_candidates.groupby("user_id")["label"]
    assert len(g) >= 3
    assert (g.min() == 0).all() and (g.max() == 1).all() and (g.size() <= 20).all()
    assert td.eval_candidates["profile_text"].str.len().gt(0).all()
    assert td.eval_candidates["item_text"].str.contains("Category: ").all()


def test_rationale_kept_in_chosen(labels: pd.DataFrame, synth_profiles: pd.DataFrame, synth: Dataset, tok) -> None:
    lab = labels.copy()
    lab["rationale"] = lab["label"].map({1: "New, but next to what they love.", 0: None})
    td = build_training_data(lab, synth_profiles, synth.items, tok, seed=1)
    yes = td.pref_train[td.pref_train["label"] == 1]
    assert (yes["chosen"] == "Yes. New, but next to what they love.").all() and (yes["rejected"] == "No").all()
    assert (td.sft_train[td.sft_train["label"] == 0]["completion"] == "No").all()


def test_deterministic_and_seeded(
    labels: pd.DataFrame, synth_profiles: pd.DataFrame, synth: Dataset, tok, td: TrainingData
) -> None:
    again = build_training_data(labels, synth_profiles, synth.items, tok, test_frac=0.25, seed=0)
    for name in ("sft_train", "sft_test", "pref_train", "eval_candidates"):
        pd.testing.assert_frame_equal(getattr(again, name), getattr(td, name))
    other = build_training_data(labels, synth_profiles, synth.items, tok, test_frac=0.25, seed=5)
    assert _users(other.sft_test) != _users(td.sft_test)


def test_save_load_roundtrip(td: TrainingData, tmp_path: Path) -> None:
    out = td.save(tmp_path / "td")
    back = TrainingData.load(out)
    for name in ("sft_train", "sft_test", "pref_train", "pref_test", "eval_candidates"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(td, name))
    assert back.metrics == td.metrics
    with pytest.raises(DataError, match="not a training-data directory"):
        TrainingData.load(tmp_path / "missing")


def test_bad_inputs(labels: pd.DataFrame, synth_profiles: pd.DataFrame, synth: Dataset, tok) -> None:
    with pytest.raises(DataError, match="all .* training labels are negative"):
        build_training_data(labels.assign(label=0), synth_profiles, synth.items, tok)
    with pytest.raises(DataError, match="test fraction"):
        build_training_data(labels, synth_profiles, synth.items, tok, test_frac=1.0)
    with pytest.raises(DataError, match="needs at least 2"):
        one = labels[labels["user_id"] == labels["user_id"].iloc[0]]
        build_training_data(one, synth_profiles, synth.items, tok)


def test_render_prompts_matches_build_prompt(tok) -> None:
    from seren.serengpt.labeling import render_prompts

    profiles = ["Engaged subcategories: Books/Poetry 3.", "  padded profile  ", "x"]
    items = ["Sonnets\nCategory: Books/Poetry", "Tent\nCategory: Outdoors/Camping  ", "{{ not a template }}"]
    assert render_prompts(tok, profiles, items) == [
        prompts.build_prompt(tok, p, i) for p, i in zip(profiles, items, strict=True)
    ]

    class Plain:  # a tokenizer without a chat template takes build_prompt's plain-text branch
        chat_template = None

    assert render_prompts(Plain(), profiles, items) == [
        prompts.build_prompt(Plain(), p, i) for p, i in zip(profiles, items, strict=True)
    ]
