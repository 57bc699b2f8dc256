"""Generic CSV/parquet adapter: map a user's own logs onto the canonical schema.

`mapping` is canonical column -> source column; canonical names that are absent from the mapping
are looked up under their own name. Every way a file can be wrong (unreadable, empty, missing
column, non-numeric rating, unparsable timestamp) becomes one DataError line naming the column,
how many rows are affected and an example value.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from seren.data.schema import EVENT_TYPES, validate_interactions, validate_items
from seren.errors import ConfigError, DataError

INTERACTION_COLUMNS = ("user_id", "item_id", "event", "rating", "timestamp")
INTERACTION_REQUIRED = ("user_id", "item_id", "timestamp")
ITEM_COLUMNS = ("item_id", "title", "text", "category", "price", "popularity")
ITEM_REQUIRED = ("item_id", "title")
DEFAULT_CATEGORY = "Items/Other"
_ID_COLUMNS = ("user_id", "item_id")
_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".bz2", ".zip", ".xz", ".zst")]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".tsv", ".txt"):
        return "tsv" if suffix == ".tsv" else "csv"
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'}", f"use one of {', '.join(_SUFFIXES)}")


def _resolve(mapping: dict[str, str] | None, allowed: tuple[str, ...], what: str) -> dict[str, str]:
    mapping = dict(mapping or {})
    unknown = [k for k in mapping if k not in allowed]
    if unknown:
        raise ConfigError(
            f"unknown canonical column '{unknown[0]}' in the {what} mapping",
            f"map one of {', '.join(allowed)} (canonical=source)",
        )
    return {c: mapping.get(c, c) for c in allowed}


def read_table(path: str | os.PathLike[str], id_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read csv/tsv/parquet by suffix; id columns are kept as text (no 007 -> 7)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found", "check the path")
    kind = _kind(path)
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        sep = "\t" if kind == "tsv" else ","
        header = pd.read_csv(path, sep=sep, nrows=0).columns
        dtype = {c: str for c in id_columns if c in header}
        return pd.read_csv(path, sep=sep, dtype=dtype, keep_default_na=True, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty", "pass a file with a header row and data rows") from None
    except Exception as exc:  # parser, decoding and arrow errors all mean "not a readable table"
        msg = " ".join(str(exc).split())[:160]
        raise DataError(
            f"{path}: cannot parse as {kind} ({type(exc).__name__}: {msg})", f"pass a valid {kind} file"
        ) from None


def _require(df: pd.DataFrame, cols: dict[str, str], required: tuple[str, ...], path: Path) -> None:
    if len(df.columns) == 0:
        raise DataError(f"{path}: file is empty", "pass a file with a header row and data rows")
    for canon in required:
        src = cols[canon]
        if src not in df.columns:
            shown = ", ".join(map(str, list(df.columns)[:12]))
            hint = f"'{canon}'" if src == canon else f"'{src}' (for '{canon}')"
            raise DataError(
                f"{path}: missing column {hint}; columns are: {shown}",
                f"add the column or map it with --map {canon}=<source column>",
            )
    if len(df) == 0:
        raise DataError(f"{path}: file has a header but no rows", "pass a non-empty file")


def _numeric(values: pd.Series, canon: str, src: str, path: Path) -> pd.Series:
    out = pd.to_numeric(values, errors="coerce")
    bad = out.isna() & values.notna() & (values.astype(str).str.strip() != "")
    if bad.any():
        raise DataError(
            f"{path}: column '{src}' ({canon}): {int(bad.sum())} non-numeric value(s) (e.g. {values[bad].iloc[0]!r})",
            f"make '{src}' numeric or map {canon} to another column",
        )
    return out.astype(float)


def parse_timestamps(values: pd.Series, src: str = "timestamp", path: Path | str = "data") -> pd.Series:
    """ISO-8601 strings or unix epoch seconds (ms/us/ns detected by magnitude) -> UTC datetimes."""
    if values.isna().any():
        n = int(values.isna().sum())
        raise DataError(f"{path}: column '{src}' (timestamp): {n} empty value(s)", "fill in every timestamp")
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    num = pd.to_numeric(values, errors="coerce")
    is_num = num.notna().to_numpy()
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if is_num.any():
        mag = float(np.abs(num[is_num].to_numpy(dtype=float)).max())
        unit = "s" if mag < 1e11 else "ms" if mag < 1e14 else "us" if mag < 1e17 else "ns"
        parsed[is_num] = pd.to_datetime(num[is_num].to_numpy(dtype=float), unit=unit, utc=True)
    text = values.astype(str).str.strip()
    if not is_num.all():
        parsed[~is_num] = pd.to_datetime(text[~is_num], utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna()
    if bad.any():
        raise DataError(
            f"{path}: column '{src}' (timestamp): {int(bad.sum())} unparsable value(s) (e.g. {text[bad].iloc[0]!r})",
            "use ISO-8601 (2024-01-31T12:00:00Z) or unix epoch seconds",
        )
    return parsed


def load_interactions(
    path: str | os.PathLike[str],
    mapping: dict[str, str] | None = None,
    event_default: str = "rating",
    *,
    validate: bool = True,
) -> pd.DataFrame:
    """Read interactions and return the canonical frame sorted by (user, time).

    `validate=False` skips the schema pass for callers that validate the whole Dataset anyway.
    """
    path = Path(path)
    if event_default not in EVENT_TYPES:
        raise ConfigError(f"unknown event type '{event_default}'", f"use one of {', '.join(EVENT_TYPES)}")
    cols = _resolve(mapping, INTERACTION_COLUMNS, "interactions")
    raw = read_table(path, id_columns=tuple(cols[c] for c in _ID_COLUMNS))
    _require(raw, cols, INTERACTION_REQUIRED, path)
    out = pd.DataFrame(
        {
            "user_id": raw[cols["user_id"]].astype("string").str.strip(),
            "item_id": raw[cols["item_id"]].astype("string").str.strip(),
        }
    )
    if cols["rating"] in raw.columns:
        out["rating"] = _numeric(raw[cols["rating"]], "rating", cols["rating"], path)
    else:
        if event_default == "rating" and cols["event"] not in raw.columns:
            raise DataError(
                f"{path}: no 'event' and no 'rating' column, so events cannot be typed",
                "map one with --map rating=<col> or --map event=<col>, or set --event-default click",
            )
        out["rating"] = np.nan
    if cols["event"] in raw.columns:
        out["event"] = raw[cols["event"]].astype("string").str.strip().str.lower()
    else:
        out["event"] = event_default
    out["timestamp"] = parse_timestamps(raw[cols["timestamp"]], cols["timestamp"], path)
    extra = [c for c in raw.columns if c not in cols.values() and c not in out.columns]
    for c in extra:  # keep additional columns (schema is non-strict)
        out[c] = raw[c].to_numpy()
    out = out[[*INTERACTION_COLUMNS, *extra]]
    if not validate:
        return out.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)
    return validate_interactions(out, source=str(path))


def load_items(path: str | os.PathLike[str], mapping: dict[str, str] | None = None) -> pd.DataFrame:
    """Read an item catalogue; missing text falls back to title + category, category to 'Items/Other'."""
    path = Path(path)
    cols = _resolve(mapping, ITEM_COLUMNS, "items")
    raw = read_table(path, id_columns=(cols["item_id"],))
    _require(raw, cols, ITEM_REQUIRED, path)
    out = pd.DataFrame(
        {
            "item_id": raw[cols["item_id"]].astype("string").str.strip(),
            "title": raw[cols["title"]].fillna("").astype(str),
        }
    )
    if cols["category"] in raw.columns:
        cat = raw[cols["category"]].fillna("").astype(str).str.strip()
        out["category"] = cat.where(cat != "", DEFAULT_CATEGORY)
    else:
        out["category"] = DEFAULT_CATEGORY
    if cols["text"] in raw.columns:
        text = raw[cols["text"]].fillna("").astype(str)
        out["text"] = text.where(text.str.strip() != "", out["title"] + ". Category: " + out["category"] + ".")
    else:
        out["text"] = out["title"] + ". Category: " + out["category"] + "."
    for opt in ("price", "popularity"):
        out[opt] = _numeric(raw[cols[opt]], opt, cols[opt], path) if cols[opt] in raw.columns else np.nan
    extra = [c for c in raw.columns if c not in cols.values() and c not in out.columns]
    for c in extra:
        out[c] = raw[c].to_numpy()
    return validate_items(out[[*ITEM_COLUMNS, *extra]], source=str(path))


def items_from_interactions(interactions: pd.DataFrame) -> pd.DataFrame:
    """A minimal catalogue (id as title, default category) for logs that come without one."""
    ids = pd.Series(interactions["item_id"].astype(str).unique())
    counts = interactions["item_id"].astype(str).value_counts()
    items = pd.DataFrame(
        {
            "item_id": ids,
            "title": "item " + ids,
            "text": "item " + ids + ". Category: " + DEFAULT_CATEGORY + ".",
            "category": DEFAULT_CATEGORY,
            "price": np.nan,
            "popularity": ids.map(counts).astype(float),
        }
    )
    return validate_items(items, source="items (derived from interactions)")
