"""Serendipity-2018 survey ingestion on a hand-made file (BOM, NA, an unknown movie), leave-one-out
profiles, and one-line errors for bad files. A check on the real development half skips when absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seren.data.survey import load_survey
from seren.errors import ConfigError, DataError

from .survey_handmade import HEADER, write_fixture

SURVEY_DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "serendipity-2018-dev"
KEYS = [("u1", "1"), ("u1", "2"), ("u1", "3"), ("u2", "2"), ("u2", "4"), ("u2", "5")]


@pytest.fixture(scope="module")
def fixture_dirs(tmp_path_factory):
    return write_fixture(tmp_path_factory.mktemp("survey"), bom=True)


@pytest.fixture(scope="module")
def survey(fixture_dirs):
    answers, ml = fixture_dirs
    return load_survey(answers.parent, ml)


def test_labels_of_the_handmade_file(survey):
    lab = survey.labels.set_index(["user_id", "item_id"]).loc[KEYS]
    assert lab["serendipitous"].tolist() == [1, 0, 1, 1, 0, 0]
    assert lab["unexpected"].tolist() == [1, 0, 1, 1, 1, 0]
    assert lab["relevant"].tolist() == [1, 1, 1, 1, 1, 1]
    np.testing.assert_allclose(lab["flag_mean"].to_numpy(), [1 / 8, 0, 1, 1 / 4, 0, 0])
    assert np.isnan(lab.loc[("u1", "2"), "s5"]) and lab.loc[("u2", "2"), "s5"] == 4.0
    assert np.isnan(lab.loc[("u2", "5"), "predicted_rating"]) and lab.loc[("u1", "1"), "predicted_rating"] == 4.5
    assert (lab["source"] == "survey").all()
    assert survey.report["n_without_movie"] == 1 and survey.report["n_rows"] == 7
    assert survey.report["n_labels"] == 6 and survey.report["n_users"] == 2
    inter = survey.dataset.interactions
    assert len(inter) == 6 and set(inter["event"]) == {"rating"}
    assert inter["timestamp"].min().year == 2017  # milliseconds since the epoch


def test_definitions_and_bom_or_not(fixture_dirs, tmp_path):
    answers, ml = fixture_dirs
    strict = load_survey(answers, ml, definition="strict").labels.set_index(["user_id", "item_id"]).loc[KEYS]
    assert strict["serendipitous"].tolist() == [1, 0, 1, 0, 0, 0]
    plain, _ = write_fixture(tmp_path, bom=False)
    assert plain.read_bytes()[:3] != b"\xef\xbb\xbf" and answers.read_bytes()[:3] == b"\xef\xbb\xbf"
    a = load_survey(plain, ml).labels
    b = load_survey(answers, ml).labels
    assert a.drop(columns=["timestamp"]).equals(b.drop(columns=["timestamp"]))
    with pytest.raises(ConfigError, match="unknown serendipity definition"):
        load_survey(answers, ml, definition="sometimes")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ("userId,movieId,rating\nu1,1,4\n", "not a Serendipity-2018 answers file"),
        (HEADER + "\n", "header but no rows"),
        (HEADER + "\nu1,1,4.0,1486127833000,4.5,4,1,3,4,2,2,5,5,6,MAYBE,TRUE,F,F,F,F,F,F\n", "not TRUE/FALSE"),
        (HEADER + "\nu1,1,4.0,1486127833000,4.5,9,1,3,4,2,2,5,5,6,F,T,F,F,F,F,F,F\n", "column 's1'"),
        (HEADER + "\nu1,77,4.0,1486127833000,4.5,4,1,3,4,2,2,5,5,6,F,T,F,F,F,F,F,F\n", "none of the 1 answered"),
    ],
)
def test_bad_files_are_one_line_errors(fixture_dirs, tmp_path, content, message):
    _, ml = fixture_dirs
    f = tmp_path / "answers.csv"
    f.write_text(content)
    with pytest.raises(DataError) as err:
        load_survey(f, ml)
    line = err.value.line()
    assert message in line and "\n" not in line and "Fix:" in line
    with pytest.raises(DataError, match="does not exist"):
        load_survey(tmp_path / "nope", ml)


def test_leave_one_out_profile_never_contains_the_judged_movie(survey, tiny_model_dir):
    from seren.profiles.build import ProfileConfig
    from seren.profiles.history import leave_one_out_profiles
    from seren.profiles.text import load_tokenizer

    cfg = ProfileConfig(positive_rating=3.5, genre_line=True, n_titles=5)
    prof = leave_one_out_profiles(survey.dataset, load_tokenizer(tiny_model_dir), survey.labels, 400, cfg)
    titles = survey.dataset.items.set_index("item_id")["title"]
    answered = survey.labels.groupby("user_id")["item_id"].agg(set)
    for row in prof.itertuples():
        assert row.item_id not in row.history_items
        assert set(row.history_items) == answered[row.user_id] - {row.item_id}
        assert titles[row.item_id] not in row.profile_text
        for other in row.history_items:  # the other answered movies are there (titles line)
            assert titles[other] in row.profile_text
    u1m1 = prof.set_index(["user_id", "item_id"]).loc[("u1", "1"), "profile_text"]
    # m2 (3.5 stars) counts as liked at positive_rating=3.5; all of m3's genres are listed
    assert "Liked genres: Comedy 1, Crime 1, Film-Noir 1, Mystery 1." in u1m1


def test_real_development_half_when_present():
    if not (SURVEY_DEV / "answers.csv").is_file():
        pytest.skip(f"Serendipity-2018 development half not found at {SURVEY_DEV} (shared data absent)")
    ml = SURVEY_DEV.parent / "ml-latest-small"
    s = load_survey(SURVEY_DEV, ml)
    assert s.report["n_rows"] == 1133  # README.txt: 1133 rows of 252 users
    assert s.report["n_labels"] + s.report["n_without_movie"] == 1133
    assert s.labels["serendipitous"].between(0, 1).all() and s.report["n_users"] <= 252
