"""MovieLens (ml-latest / ml-latest-small / ml-25m format) -> canonical Dataset.

ratings.csv (userId, movieId, rating, timestamp[unix s]) become `rating` events; movies.csv
(movieId, title, genres) plus the most frequent tags from the optional tags.csv become the item
texts, so the LLM stages see what a movie is about, not just its id. The category stays the
first genre ("Movies/<genre>", one interest per movie for the profile's lists); every genre is
kept in `genres` ("A|B|C") and the tags in `tags` ("t1, t2"), for profiles and item texts that
can afford them (`ProfileConfig.genre_line`, `n_titles`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from seren.data.adapters import load_interactions, read_table
from seren.data.dataset import Dataset
from seren.errors import DataError

MAX_TAGS = 5
NO_GENRE = "(no genres listed)"


def _require(df: pd.DataFrame, cols: tuple[str, ...], path: Path) -> None:
    if len(df.columns) == 0:
        raise DataError(f"{path}: file is empty", "use an unmodified MovieLens export")
    for c in cols:
        if c not in df.columns:
            raise DataError(
                f"{path}: missing column '{c}'; columns are: {', '.join(map(str, df.columns))}",
                "use the ml-latest / ml-25m format (ratings.csv, movies.csv, tags.csv)",
            )


def _top_tags(tags_path: Path, min_tag_count: int) -> pd.Series:
    """movieId -> 'tag1, tag2, ...' (the MAX_TAGS most frequent tags, lower-cased)."""
    tags = read_table(tags_path, id_columns=("movieId",))
    _require(tags, ("movieId", "tag"), tags_path)
    t = pd.DataFrame(
        {"movieId": tags["movieId"].astype(str), "tag": tags["tag"].astype("string").str.strip().str.lower()}
    )
    t = t[t["tag"].notna() & (t["tag"] != "")]
    counts = t.groupby(["movieId", "tag"], sort=False).size().reset_index(name="n")
    counts = counts[counts["n"] >= min_tag_count]
    counts = counts.sort_values(["movieId", "n", "tag"], ascending=[True, False, True], kind="stable")
    counts = counts.groupby("movieId", sort=False).head(MAX_TAGS)
    return counts.groupby("movieId", sort=False)["tag"].agg(", ".join)


def load_movielens(path: str | os.PathLike[str], min_tag_count: int = 1) -> Dataset:
    """Load a MovieLens directory; items keep every movie, popularity = number of ratings."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(
            f"MovieLens directory {path} does not exist", "pass the folder holding ratings.csv and movies.csv"
        )
    for name in ("ratings.csv", "movies.csv"):
        if not (path / name).is_file():
            raise DataError(f"{path}: {name} not found", "pass an ml-latest / ml-25m folder (ratings.csv, movies.csv)")
    ratings_f, movies_f, tags_f = path / "ratings.csv", path / "movies.csv", path / "tags.csv"
    try:
        header = pd.read_csv(ratings_f, nrows=0)
    except pd.errors.EmptyDataError:
        raise DataError(f"{ratings_f}: file is empty", "use an unmodified MovieLens export") from None
    except Exception as exc:
        raise DataError(
            f"{ratings_f}: cannot parse as csv ({type(exc).__name__})", "use an unmodified MovieLens export"
        ) from None
    _require(header, ("userId", "movieId", "rating", "timestamp"), ratings_f)
    interactions = load_interactions(
        ratings_f,
        {"user_id": "userId", "item_id": "movieId", "rating": "rating", "timestamp": "timestamp"},
        "rating",
        validate=False,
    )

    movies = read_table(movies_f, id_columns=("movieId",))
    _require(movies, ("movieId", "title", "genres"), movies_f)
    if len(movies) == 0:
        raise DataError(f"{movies_f}: file has a header but no rows", "use an unmodified MovieLens export")
    ids = movies["movieId"].astype(str).str.strip()
    title = movies["title"].fillna("").astype(str).str.strip()
    genre_lists = movies["genres"].fillna(NO_GENRE).astype(str).str.split("|")
    genres = genre_lists.map(lambda g: [x for x in g if x and x != NO_GENRE])
    first = genres.map(lambda g: g[0] if g else "Unknown")
    genre_text = genres.map(lambda g: ", ".join(g) if g else "unknown")
    text = title + ". Genres: " + genre_text + "."
    tag_text = pd.Series("", index=ids.index)
    if tags_f.is_file():
        top = ids.map(_top_tags(tags_f, min_tag_count))
        has = top.notna()
        text = text.where(~has, text + " Tags: " + top.fillna("") + ".")
        tag_text = top.fillna("")
    popularity = ids.map(interactions["item_id"].value_counts()).fillna(0).astype(float)
    items = pd.DataFrame(
        {
            "item_id": ids,
            "title": title,
            "text": text,
            "category": "Movies/" + first,
            "price": np.nan,
            "popularity": popularity,
            "genres": genre_lists.map("|".join),
            "tags": tag_text,
        }
    )
    meta = {
        "source": "movielens",
        "path": str(path.resolve()),
        "min_tag_count": min_tag_count,
        "has_tags": tags_f.is_file(),
    }
    return Dataset(interactions=interactions, items=items, meta=meta).validate()
