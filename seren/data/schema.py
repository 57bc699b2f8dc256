"""The canonical schema every source is mapped onto, validated with pandera.

Tables (all ids are strings, all timestamps UTC):

* interactions: user_id, item_id, event, rating (nullable, 0.5-5), timestamp
* items: item_id, title, text, category ("Top/Sub" path), price (nullable), popularity (nullable)
* users (optional): user_id plus free extra columns
* labels (optional, human / ground-truth judgments): user_id, item_id, serendipitous (0/1),
  relevant (0/1), unexpected (0/1), timestamp, source

Validation collects *every* violation and reports each as column + row count + an example,
in one line, instead of a stack trace.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from seren.errors import DataError

EVENT_TYPES = ("impression", "click", "like", "purchase", "skip", "rating")
POSITIVE_EVENTS = ("click", "like", "purchase")
POSITIVE_RATING = 4.0

_str = pa.Column(str, nullable=False, coerce=True, checks=pa.Check.str_length(min_value=1))
_ts = pa.Column("datetime64[ns, UTC]", nullable=False, coerce=True)

INTERACTIONS = pa.DataFrameSchema(
    {
        "user_id": _str,
        "item_id": _str,
        "event": pa.Column(str, checks=pa.Check.isin(EVENT_TYPES), coerce=True),
        "rating": pa.Column(float, nullable=True, coerce=True, checks=pa.Check.in_range(0, 5)),
        "timestamp": _ts,
    },
    strict=False,
    name="interactions",
)

ITEMS = pa.DataFrameSchema(
    {
        "item_id": pa.Column(str, unique=True, coerce=True, checks=pa.Check.str_length(min_value=1)),
        "title": pa.Column(str, coerce=True),
        "text": pa.Column(str, coerce=True),
        "category": pa.Column(str, coerce=True, checks=pa.Check.str_length(min_value=1)),
        "price": pa.Column(float, nullable=True, coerce=True, required=False),
        "popularity": pa.Column(float, nullable=True, coerce=True, required=False),
    },
    strict=False,
    name="items",
)

USERS = pa.DataFrameSchema({"user_id": pa.Column(str, unique=True, coerce=True)}, strict=False, name="users")

LABELS = pa.DataFrameSchema(
    {
        "user_id": _str,
        "item_id": _str,
        "serendipitous": pa.Column(int, coerce=True, checks=pa.Check.isin([0, 1])),
        "relevant": pa.Column(int, coerce=True, checks=pa.Check.isin([0, 1]), required=False),
        "unexpected": pa.Column(int, coerce=True, checks=pa.Check.isin([0, 1]), required=False),
        "timestamp": pa.Column("datetime64[ns, UTC]", coerce=True, required=False),
        "source": pa.Column(str, coerce=True, required=False),
    },
    strict=False,
    name="labels",
)


def _describe(schema: pa.DataFrameSchema, exc: SchemaErrors, source: str) -> str:
    cases = exc.failure_cases.drop_duplicates(subset=["column", "check", "index", "failure_case"])
    parts: list[str] = []
    bad_dtype: set[str] = set()
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        example = group["failure_case"].iloc[0]
        col = column if isinstance(column, str) else schema.name
        n = group["index"].nunique(dropna=False)
        check_s = str(check)
        if check_s.startswith("coerce_dtype") or check_s.startswith("dtype"):
            bad_dtype.add(col)
        elif col in bad_dtype:
            continue  # a value check on an unconvertible column only repeats the dtype error
        part = None
        if check_s.startswith("column_in_dataframe"):
            part = f"missing column '{example}'"
        elif check_s.startswith("coerce_dtype") or check_s.startswith("dtype"):
            part = (
                f"column '{col}': {n} row(s) not convertible to {check_s.split('(')[-1].rstrip(')')} (e.g. {example!r})"
            )
        elif check_s == "not_nullable":
            part = f"column '{col}': {n} empty value(s)"
        elif check_s == "field_uniqueness":
            part = f"column '{col}': {n} duplicate value(s) (e.g. {example!r})"
        else:
            part = f"column '{col}': {n} row(s) fail {check_s} (e.g. {example!r})"
        if part not in parts:
            parts.append(part)
    return f"{source}: invalid {schema.name}: " + "; ".join(parts)


def _validate(df: pd.DataFrame, schema: pa.DataFrameSchema, source: str) -> pd.DataFrame:
    if df is None or len(df.columns) == 0:
        raise DataError(f"{source}: {schema.name} table is empty (no columns)", "pass a file with a header row")
    if len(df) == 0:
        raise DataError(f"{source}: {schema.name} table has no rows", "pass a non-empty file")
    try:
        return schema.validate(df, lazy=True)
    except SchemaErrors as exc:
        raise DataError(_describe(schema, exc, source), f"fix the {schema.name} data or the column mapping") from None


def validate_interactions(df: pd.DataFrame, source: str = "interactions") -> pd.DataFrame:
    """Coerce and validate; returns the canonical frame sorted by (user_id, timestamp)."""
    out = _validate(df, INTERACTIONS, source)
    return out.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)


def validate_items(df: pd.DataFrame, source: str = "items") -> pd.DataFrame:
    out = _validate(df, ITEMS, source)
    for opt in ("price", "popularity"):
        if opt not in out.columns:
            out[opt] = pd.Series(float("nan"), index=out.index, dtype=float)
    return out


def validate_users(df: pd.DataFrame, source: str = "users") -> pd.DataFrame:
    return _validate(df, USERS, source)


def validate_labels(df: pd.DataFrame, source: str = "labels") -> pd.DataFrame:
    return _validate(df, LABELS, source)


def is_positive(interactions: pd.DataFrame) -> pd.Series:
    """Positive engagement: a click/like/purchase, or an explicit rating >= 4."""
    rating = interactions["rating"].fillna(-1.0)
    return interactions["event"].isin(POSITIVE_EVENTS) | (rating >= POSITIVE_RATING)
