"""A dataset is a directory of canonical parquet tables plus a manifest.

Every stage (features, profiles, labeling, exploration, nearline) reads a dataset through
`load_dataset`, so the on-disk contract is defined once here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from seren.data.schema import validate_interactions, validate_items, validate_labels, validate_users
from seren.errors import DataError
from seren.io import atomic_dir, write_json

TABLES = ("interactions", "items", "users", "labels")


@dataclass
class Dataset:
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None = None
    labels: pd.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> Dataset:
        """Validate every table and the references between them."""
        self.interactions = validate_interactions(self.interactions)
        self.items = validate_items(self.items)
        if self.users is not None:
            self.users = validate_users(self.users)
        if self.labels is not None:
            self.labels = validate_labels(self.labels)
        unknown = ~self.interactions["item_id"].isin(self.items["item_id"])
        if unknown.any():
            example = self.interactions.loc[unknown, "item_id"].iloc[0]
            raise DataError(
                f"interactions: {int(unknown.sum())} row(s) reference unknown item_id (e.g. {example!r})",
                "add the items to the items table or drop those interactions",
            )
        return self


def save_dataset(ds: Dataset, out_dir: str | os.PathLike[str], force: bool = False) -> Path:
    """Write all tables atomically (the whole directory appears at once). A non-empty directory seren
    did not write is refused unless `force` (see seren.io.atomic_dir)."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, force=force) as tmp:
        for name in TABLES:
            df = getattr(ds, name)
            if df is not None:
                df.to_parquet(tmp / f"{name}.parquet", index=False)
        write_json(
            tmp / "manifest.json",
            {**ds.meta, "tables": {n: int(len(getattr(ds, n))) for n in TABLES if getattr(ds, n) is not None}},
        )
    return out_dir


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(
            f"{path}: cannot read parquet ({type(exc).__name__}: {exc})", "regenerate or re-import the dataset"
        ) from None


def load_dataset(path: str | os.PathLike[str], validate: bool = True) -> Dataset:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(f"{path} is a file, not a dataset directory", "pass the directory `seren data generate` wrote")
    if not path.is_dir():
        raise DataError(
            f"dataset directory {path} does not exist", "run `seren data generate --out DIR` or import data first"
        )
    tables: dict[str, pd.DataFrame | None] = {}
    for name in TABLES:
        f = path / f"{name}.parquet"
        if not f.exists():
            if name in ("interactions", "items"):
                raise DataError(
                    f"dataset {path} has no {name}.parquet",
                    "point at a directory written by `seren data generate` or an adapter",
                )
            tables[name] = None
        else:
            tables[name] = _read(f)
    meta_f = path / "manifest.json"
    import json

    meta: object = {}
    if meta_f.exists():
        try:
            meta = json.loads(meta_f.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(
                f"{meta_f} is not valid JSON ({type(exc).__name__}: {exc})",
                "regenerate or re-import the dataset (or delete the broken manifest.json)",
            ) from None
        if not isinstance(meta, dict):
            raise DataError(f"{meta_f} is not a JSON object", "regenerate or re-import the dataset")
    ds = Dataset(meta=meta, **tables)  # type: ignore[arg-type]
    return ds.validate() if validate else ds
