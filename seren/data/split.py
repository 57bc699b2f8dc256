"""Per-user chronological train/validation/test split.

Leak-free by construction: for every user, each validation event is strictly later than all of
that user's training events, and each test event strictly later than all training and validation
events. Events that share a timestamp with the last event of an earlier split go to that earlier
split (a boundary never cuts through a tie), so a model never trains on the "future".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from seren.errors import ConfigError, DataError


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5).astype(np.int64)


def chronological_split(
    interactions: pd.DataFrame, val_frac: float = 0.1, test_frac: float = 0.1
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split each user's history by time into (train, val, test); every user keeps >= 1 train event."""
    if not (0 <= val_frac < 1 and 0 <= test_frac < 1 and val_frac + test_frac < 1):
        raise ConfigError(
            f"invalid split fractions val={val_frac}, test={test_frac}",
            "use fractions in [0, 1) whose sum is below 1",
        )
    missing = [c for c in ("user_id", "timestamp") if c not in interactions.columns]
    if missing:
        raise DataError(f"interactions: missing column '{missing[0]}' for the split", "pass canonical interactions")
    if interactions.empty:
        empty = interactions.iloc[0:0]
        return empty.copy(), empty.copy(), empty.copy()

    try:
        when = pd.to_datetime(interactions["timestamp"], utc=True)
    except (ValueError, TypeError) as exc:
        raise DataError(f"interactions: unparsable timestamp ({exc})", "validate the interactions first") from None
    order = np.lexsort((when.astype("int64").to_numpy(), interactions["user_id"].astype(str).to_numpy()))
    df = interactions.iloc[order].reset_index(drop=True)
    uid = df["user_id"].astype(str).to_numpy()
    ts_i = when.astype("int64").to_numpy()[order]
    codes, starts = np.unique(uid, return_index=True)
    counts = np.diff(np.append(starts, len(df)))
    pos = np.arange(len(df)) - np.repeat(starts, counts)  # position inside the user's history
    n = np.repeat(counts, counts)

    n_test = _round_half_up(counts * test_frac)
    n_val = _round_half_up(counts * val_frac)
    # keep at least one training event: shrink validation first, then test
    over = np.maximum(n_test + n_val - (counts - 1), 0)
    cut_val = np.minimum(over, n_val)
    n_val -= cut_val
    n_test -= over - cut_val
    n_test_r, n_val_r = np.repeat(n_test, counts), np.repeat(n_val, counts)
    provisional = np.where(pos >= n - n_test_r, 2, np.where(pos >= n - n_test_r - n_val_r, 1, 0))

    # move boundary ties to the earlier split: an event goes to train if its timestamp is not after
    # the last provisional train event, to val if not after the last (train or val) event
    group = np.repeat(np.arange(len(codes)), counts)
    last = np.full((len(codes), 2), np.iinfo(np.int64).min)
    np.maximum.at(last[:, 0], group[provisional == 0], ts_i[provisional == 0])
    np.maximum.at(last[:, 1], group[provisional <= 1], ts_i[provisional <= 1])
    split = np.where(ts_i <= last[group, 0], 0, np.where(ts_i <= last[group, 1], 1, 2))
    parts = tuple(df[split == k].reset_index(drop=True) for k in range(3))
    return parts  # type: ignore[return-value]
