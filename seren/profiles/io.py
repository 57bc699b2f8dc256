"""Persisting profiles, shaping them for Feast, and the one call the CLI and component make."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from seren.errors import DataError
from seren.io import write_parquet

REQUIRED = ("user_id", "profile_text", "profile_tokens")


def write_profiles(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Atomic parquet; `df.attrs` (metrics, as_of) travel in the parquet metadata."""
    return write_parquet(path, df)


def read_profiles(path: str | os.PathLike[str]) -> pd.DataFrame:
    path = Path(path)
    if path.is_dir():  # a KFP artifact directory holding profiles.parquet
        path = path / "profiles.parquet"
    if not path.exists():
        raise DataError(
            f"profiles file {path} does not exist", "run `seren profiles build --data DIR --out FILE` first"
        )
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"{path}: cannot read profiles ({type(exc).__name__})", "rebuild the profiles") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(f"{path}: not a profiles table (missing {', '.join(missing)})", "rebuild the profiles")
    return df


def profiles_for_feast(df: pd.DataFrame, ts: datetime | pd.Timestamp | None = None) -> pd.DataFrame:
    """The push frame of Feast's `user_profile` view: user_id, profile_text, profile_tokens, event_timestamp.

    A snapshot table (several `as_of` per user) contributes each user's latest profile only.
    """
    t = pd.Timestamp(ts) if ts is not None else pd.Timestamp.now(tz="UTC")
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    if "as_of" in df.columns and df["user_id"].duplicated().any():
        df = df.sort_values("as_of", kind="stable", na_position="last").drop_duplicates("user_id", keep="last")
    out = df[list(REQUIRED)].copy()
    out["user_id"] = out["user_id"].astype(str)
    out["profile_text"] = out["profile_text"].astype(str)
    out["profile_tokens"] = out["profile_tokens"].astype("int64")
    out["event_timestamp"] = pd.Series([t] * len(out), index=out.index, dtype="datetime64[ns, UTC]")
    return out.reset_index(drop=True)


def labeling_cutoffs(
    interactions: pd.DataFrame, label_frac: float, snapshots: int = 1, per_user: bool = False
) -> list[Any]:
    """Cutoffs that leave the last `label_frac` of events for labeling, split into `snapshots`
    equal windows: profile k sees events before cutoff k and labels the window after it.

    Global cutoffs (timestamps) are quantiles of all event times; `per_user` cutoffs (one Series
    user_id -> time per snapshot) are quantiles of each user's own events, so users active in
    different periods (MovieLens) all contribute. [] for label_frac 0 (whole history).
    """
    if not 0.0 <= label_frac < 1.0:
        raise DataError(f"label fraction {label_frac} is outside [0, 1)", "pass e.g. 0.3 (30% of events are labeled)")
    if snapshots < 1:
        raise DataError(f"snapshots must be >= 1, got {snapshots}", "pass 1 (one cutoff) or more")
    if label_frac == 0.0:
        return []
    ts = interactions["timestamp"]
    qs = [1.0 - label_frac * (snapshots - k) / snapshots for k in range(snapshots)]
    if not per_user:
        return sorted({ts.quantile(q, interpolation="nearest") for q in qs})
    ns = pd.Series(ts.astype("datetime64[ns, UTC]").array.asi8, index=interactions.index)
    grp = ns.groupby(interactions["user_id"].astype(str))
    out = []
    for q in qs:
        cut = grp.quantile(q, interpolation="higher").astype("int64")
        out.append(pd.Series(pd.to_datetime(cut.to_numpy(), utc=True), index=cut.index, name="as_of"))
    return out


def labeling_cutoff(interactions: pd.DataFrame, label_frac: float) -> pd.Timestamp | None:
    """The single as_of that leaves the last `label_frac` of events for labeling; None for 0."""
    cuts = labeling_cutoffs(interactions, label_frac)
    return cuts[0] if cuts else None


def build_profiles_file(
    data_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    base_model: str = "smollm2",
    token_budget: int = 160,
    as_of: str | None = None,
    label_frac: float = 0.0,
    backend: str = "none",
    backend_kwargs: dict[str, Any] | None = None,
    snapshots: int = 1,
    per_user: bool = False,
) -> dict[str, Any]:
    """Dataset dir -> profiles parquet (atomic) + metrics; what `seren profiles build` and the component run.

    `as_of` (ISO) wins over `label_frac`/`snapshots`/`per_user`; with neither, the whole history is used.
    """
    from seren.data.dataset import load_dataset
    from seren.profiles.build import build_profile_snapshots, build_profiles
    from seren.profiles.text import load_tokenizer

    ds = load_dataset(data_dir)
    cutoffs: list[Any] = [as_of] if as_of else labeling_cutoffs(ds.interactions, label_frac, snapshots, per_user)
    be = None
    if backend and backend != "none":
        from seren.llm.backends import get_backend

        be = get_backend(backend, **(backend_kwargs or {}))
    tok = load_tokenizer(base_model)
    if cutoffs and (len(cutoffs) > 1 or per_user):
        df = build_profile_snapshots(ds, tok, cutoffs, token_budget=token_budget, backend=be)
    else:
        df = build_profiles(ds, tok, as_of=cutoffs[0] if cutoffs else None, token_budget=token_budget, backend=be)
    write_profiles(df, out_path)
    return json.loads(json.dumps(df.attrs["metrics"], default=str))
