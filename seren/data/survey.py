"""Serendipity-2018 survey answers (GroupLens, Kotkov et al. SAC 2018) -> canonical tables.

The survey asked MovieLens users about movies they had rated >= 3.5: eight 1-5 agreement
statements (s1..s8) and eight TRUE/FALSE serendipity variants derived from them. This adapter
turns an `answers.csv` of that format into

* `labels` (the canonical labels table): serendipitous by a chosen definition (default: any of
  the eight flags), relevant, unexpected, plus every per-statement score, the flags, their mean
  (`flag_mean`, the graded human target), the user's rating and MovieLens's `predictedRating`;
* `interactions`: the answered movies as `rating` events (the only history these users have);
* `items`: ml-latest-small's movies (all genres, tags and titles), joined by movieId.

Rows whose movie is not in movies.csv are dropped and counted (`report["n_without_movie"]`):
they cannot be shown to an LLM. A byte-order mark and NA cells are accepted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren.data.adapters import parse_timestamps
from seren.data.dataset import Dataset
from seren.errors import ConfigError, DataError

STATEMENTS = tuple(f"s{i}" for i in range(1, 9))
FLAGS = (
    "s_ser_rel",
    "s_ser_find",
    "s_ser_imp",
    "s_ser_rec",
    "m_ser_rel",
    "m_ser_find",
    "m_ser_imp",
    "m_ser_rec",
)
REQUIRED = ("userId", "movieId", "rating", "timestamp", *STATEMENTS, *FLAGS)
# Serendipity definitions: which flags make a row serendipitous (any of them).
DEFINITIONS: dict[str, tuple[str, ...]] = {
    "any": FLAGS,
    "strict": FLAGS[:4],
    "motivational": FLAGS[4:],
    **{f: (f,) for f in FLAGS},
}
_TRUE = {"true", "t", "1", "yes"}
_FALSE = {"false", "f", "0", "no"}


@dataclass
class Survey:
    """The survey as canonical tables; `dataset` holds interactions + items + labels together."""

    dataset: Dataset
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> pd.DataFrame:
        assert self.dataset.labels is not None
        return self.dataset.labels


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"survey file {path} does not exist", "pass the folder or path of answers.csv")
    try:
        # utf-8-sig strips a byte-order mark when there is one and reads plain UTF-8 otherwise.
        df = pd.read_csv(path, encoding="utf-8-sig", dtype={"userId": str, "movieId": str}, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty", "pass the survey's answers.csv with its header row") from None
    except Exception as exc:  # parser and decoding errors all mean "not this format"
        msg = " ".join(str(exc).split())[:120]
        raise DataError(f"{path}: cannot parse as CSV ({type(exc).__name__}: {msg})", "pass a UTF-8 CSV") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: not a Serendipity-2018 answers file (missing column(s) {', '.join(missing[:4])}"
            f"{' ...' if len(missing) > 4 else ''})",
            "pass answers.csv with userId, movieId, rating, timestamp, s1..s8 and the eight *_ser_* flags",
        )
    if len(df) == 0:
        raise DataError(f"{path}: file has a header but no rows", "pass a non-empty answers.csv")
    return df


def _flag(values: pd.Series, col: str, path: Path) -> pd.Series:
    """TRUE/FALSE (any case, or 1/0) -> 1.0/0.0, NA -> NaN; anything else is an error."""
    text = values.astype("string").str.strip().str.lower()
    out = pd.Series(np.nan, index=values.index, dtype=float)
    out[text.isin(_TRUE).fillna(False).to_numpy()] = 1.0
    out[text.isin(_FALSE).fillna(False).to_numpy()] = 0.0
    bad = out.isna() & text.notna() & ~text.isin(["na", "nan", ""]).fillna(False)
    if bad.any():
        raise DataError(
            f"{path}: column '{col}': {int(bad.sum())} value(s) that are not TRUE/FALSE (e.g. {values[bad].iloc[0]!r})",
            "use TRUE, FALSE or NA",
        )
    return out


def _score(values: pd.Series, col: str, path: Path, low: float, high: float) -> pd.Series:
    num = pd.to_numeric(values, errors="coerce")
    text = values.astype("string").str.strip()
    bad = (num.isna() & text.notna() & ~text.str.upper().isin(["NA", "NAN", ""]).fillna(False)) | ~(
        num.isna() | num.between(low, high)
    )
    if bad.any():
        raise DataError(
            f"{path}: column '{col}': {int(bad.sum())} value(s) outside {low:g}-{high:g} or not numeric "
            f"(e.g. {values[bad].iloc[0]!r})",
            f"use numbers from {low:g} to {high:g} or NA",
        )
    return num.astype(float)


def survey_path(path: str | os.PathLike[str]) -> Path:
    """A directory holding answers.csv, or the CSV itself."""
    p = Path(path)
    return p / "answers.csv" if p.is_dir() else p


def load_survey(
    path: str | os.PathLike[str],
    movies: str | os.PathLike[str] | Dataset,
    definition: str = "any",
) -> Survey:
    """Read a Serendipity-2018 answers file and join it with a MovieLens catalogue.

    `movies` is an ml-latest(-small) folder (loaded with `load_movielens`, so popularity counts
    that folder's ratings) or an already loaded Dataset whose items are MovieLens movies.
    `definition`: any | strict | motivational | one flag name (e.g. s_ser_find).
    """
    if definition not in DEFINITIONS:
        raise ConfigError(f"unknown serendipity definition {definition!r}", f"use one of: {', '.join(DEFINITIONS)}")
    f = survey_path(path)
    raw = _read(f)
    if isinstance(movies, Dataset):
        catalogue = movies
    else:
        from seren.data.movielens import load_movielens

        catalogue = load_movielens(movies)
    items = catalogue.items

    uid = raw["userId"].astype("string").str.strip()
    iid = raw["movieId"].astype("string").str.strip().str.replace(r"\.0$", "", regex=True)
    for col, ids in (("userId", uid), ("movieId", iid)):
        if ids.isna().any() or (ids == "").any():
            n = int((ids.isna() | (ids == "")).sum())
            raise DataError(f"{f}: column '{col}': {n} empty value(s)", f"fill in every {col}")
    rating = _score(raw["rating"], "rating", f, 0.5, 5.0)
    if rating.isna().any():
        raise DataError(f"{f}: column 'rating': {int(rating.isna().sum())} empty value(s)", "fill in every rating")
    ts = parse_timestamps(raw["timestamp"], "timestamp", f)
    df = pd.DataFrame({"user_id": uid.astype(str), "item_id": iid.astype(str), "rating": rating, "timestamp": ts})
    df["predicted_rating"] = (
        _score(raw["predictedRating"], "predictedRating", f, -1e9, 1e9) if "predictedRating" in raw else np.nan
    )
    for s in STATEMENTS:
        df[s] = _score(raw[s], s, f, 1, 5)
    if "q" in raw.columns:
        df["q"] = _score(raw["q"], "q", f, 1, 7)
    for c in FLAGS:
        df[c] = _flag(raw[c], c, f)
    dup = df.duplicated(["user_id", "item_id"], keep="first")
    n_dup = int(dup.sum())
    df = df[~dup]

    flags = df[list(FLAGS)]
    chosen = df[list(DEFINITIONS[definition])]
    df["flag_mean"] = flags.mean(axis=1, skipna=True)  # NaN only when every flag is NA
    df["n_flags"] = flags.fillna(0).sum(axis=1).astype(int)
    df["serendipitous"] = chosen.fillna(0).max(axis=1).astype(int)
    # Unexpectedness kinds of the paper: not expected to enjoy (s3 < 3), would not find it alone
    # (s4 > 3), different from the usual (s5 > 3), surprised it was recommended (s6 > 3).
    unexpected = (df["s3"] < 3) | (df["s4"] > 3) | (df["s5"] > 3) | (df["s6"] > 3)
    df["unexpected"] = unexpected.astype(int)
    # Relevant: glad to have watched it (s7 > 3) when answered, else the rating itself (>= 3.5).
    df["relevant"] = np.where(df["s7"].notna(), df["s7"] > 3, df["rating"] >= 3.5).astype(int)
    df["source"] = "survey"

    known = df["item_id"].isin(items["item_id"].astype(str))
    n_rows, n_without = len(df), int((~known).sum())
    df = df[known].reset_index(drop=True)
    if df.empty:
        raise DataError(
            f"{f}: none of the {n_rows} answered movies is in the MovieLens catalogue",
            "pass the ml-latest-small (or ml-latest) folder the survey's movieIds come from",
        )
    interactions = df[["user_id", "item_id", "rating", "timestamp"]].assign(event="rating")
    label_cols = [
        "user_id",
        "item_id",
        "serendipitous",
        "relevant",
        "unexpected",
        "timestamp",
        "source",
        "flag_mean",
        "n_flags",
        "rating",
        "predicted_rating",
        *STATEMENTS,
        *(["q"] if "q" in df.columns else []),
        *FLAGS,
    ]
    ds = Dataset(
        interactions=interactions[["user_id", "item_id", "event", "rating", "timestamp"]],
        items=items,
        labels=df[label_cols],
        meta={"source": "serendipity-2018", "path": str(f.resolve()), "definition": definition},
    ).validate()
    report = {
        "n_rows": int(n_rows + n_dup),
        "n_duplicates": n_dup,
        "n_without_movie": n_without,
        "n_labels": int(len(ds.labels)),
        "n_users": int(ds.labels["user_id"].nunique()),
        "n_movies": int(ds.labels["item_id"].nunique()),
        "serendipitous_rate": round(float(ds.labels["serendipitous"].mean()), 4),
        "definition": definition,
    }
    ds.meta["report"] = report
    return Survey(dataset=ds, report=report)
