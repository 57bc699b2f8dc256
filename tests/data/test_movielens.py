from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from seren.data import load_dataset
from seren.data.movielens import load_movielens
from seren.data.split import chronological_split
from seren.errors import DataError

from .conftest import run_cli


@pytest.fixture(scope="module")
def ml_dir(movielens_small, tmp_path_factory):
    """Imported once through the real CLI; the tests below read what it wrote."""
    out = tmp_path_factory.mktemp("ml") / "ml"
    res = run_cli("data", "import-movielens", str(movielens_small), "--out", str(out), "--json")
    assert res.returncode == 0, res.stderr
    return out, json.loads(res.stdout)


@pytest.fixture(scope="module")
def ml(ml_dir):
    return load_dataset(ml_dir[0])  # re-validates every table as written


def test_movielens_small_maps_onto_canonical_schema(ml, movielens_small):
    ratings = pd.read_csv(movielens_small / "ratings.csv")
    movies = pd.read_csv(movielens_small / "movies.csv")
    assert len(ml.interactions) == len(ratings)
    assert ml.interactions["user_id"].nunique() == ratings["userId"].nunique()
    assert len(ml.items) == len(movies)
    assert (ml.interactions["event"] == "rating").all()
    assert ml.interactions["rating"].between(0.5, 5).all()
    first = ratings.iloc[0]
    row = ml.interactions[
        (ml.interactions.user_id == str(int(first.userId))) & (ml.interactions.item_id == str(int(first.movieId)))
    ]
    assert row["timestamp"].iloc[0] == pd.Timestamp(int(first.timestamp), unit="s", tz="UTC")
    assert ml.items["popularity"].sum() == len(ratings)
    assert ml.meta["source"] == "movielens" and ml.meta["has_tags"]


def test_movielens_item_text_and_category(ml):
    items = ml.items.set_index("item_id")
    toy = items.loc["1"]
    assert toy["title"] == "Toy Story (1995)"
    assert toy["category"] == "Movies/Adventure"
    assert "Genres: Adventure, Animation, Children, Comedy, Fantasy." in toy["text"]
    assert "Tags: pixar" in toy["text"]  # most frequent tag of Toy Story in ml-latest-small
    assert items["category"].str.fullmatch(r"Movies/[^/]+").all()
    no_genre = items[items["genres"] == "(no genres listed)"]
    assert (no_genre["category"] == "Movies/Unknown").all()


def test_movielens_split_is_leak_free(ml):
    train, val, test = chronological_split(ml.interactions)
    assert len(train) + len(val) + len(test) == len(ml.interactions)
    last = pd.concat([train, val]).groupby("user_id")["timestamp"].max()
    first_test = test.groupby("user_id")["timestamp"].min()
    assert (first_test > last.reindex(first_test.index)).all()


def test_cli_import_movielens_summary(ml_dir, movielens_small):
    out, info = ml_dir
    assert info["tables"] == {"interactions": 100836, "items": 9742}
    assert info["n_users"] == 610 and info["out"] == str(out)
    assert json.loads((out / "manifest.json").read_text())["path"] == str(movielens_small.resolve())


def _copy(src: Path, dst: Path, n: int = 200) -> Path:
    dst.mkdir()
    pd.read_csv(src / "ratings.csv", nrows=n).to_csv(dst / "ratings.csv", index=False)
    shutil.copy(src / "movies.csv", dst / "movies.csv")
    return dst


def test_movielens_missing_pieces(movielens_small, tmp_path):
    d = _copy(movielens_small, tmp_path / "ml")
    assert len(load_movielens(d).interactions) == 200  # tags.csv is optional
    (d / "movies.csv").unlink()
    with pytest.raises(DataError, match="movies.csv not found"):
        load_movielens(d)
    d2 = _copy(movielens_small, tmp_path / "ml2")
    pd.read_csv(d2 / "ratings.csv").drop(columns="rating").to_csv(d2 / "ratings.csv", index=False)
    with pytest.raises(DataError, match="missing column 'rating'"):
        load_movielens(d2)
    d3 = _copy(movielens_small, tmp_path / "ml3")
    (d3 / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,yesterday\n")
    with pytest.raises(DataError, match="unparsable"):
        load_movielens(d3)
    with pytest.raises(DataError, match="does not exist"):
        load_movielens(tmp_path / "nothing")
