"""The judgment table: what monitoring compares, and the one place its schema is defined.

A *judgment* is one SerenGPT verdict on one (user, candidate item): its score P(Yes), the
thresholded decision, and the context the model saw (profile length, the user's category
entropy, the candidate's popularity). Two producers write the same columns:

* validation time (the *reference*): the judgments of the validated model on held-out users,
  written once with `write_reference`;
* the nearline job (the *current* judgments): one parquet part per run appended with
  `append_judgments` into a directory; monitoring reads a time window of it.

Feedback (did the user later engage positively with the judged item?) is an optional column
`feedback` (0/1, empty = not yet known); `attach_feedback` derives it from interactions.
This module imports no Evidently, so writers stay cheap to import.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from seren.data.schema import _describe, is_positive
from seren.durations import parse_duration
from seren.errors import ConfigError, DataError
from seren.io import write_parquet
from seren.paths import monitoring_dir

# The contract between nearline (writer), validation (writer) and monitoring (reader).
JUDGMENT_COLUMNS: tuple[str, ...] = (
    "user_id",
    "item_id",
    "score",  # SerenGPT P(Yes) in [0, 1]
    "judged_serendipitous",  # 0/1: score >= the serving threshold
    "profile_tokens",  # tokens of the cognition profile in the prompt (user_profile.profile_tokens)
    "category_entropy",  # entropy (bits) of the user's positive categories (profiles / user_stats)
    "candidate_popularity",  # item_features.popularity of the candidate (share of positive events)
    "event_timestamp",  # when the judgment was made (UTC)
)
# The columns whose distributions are compared (the rest identify a judgment).
DRIFT_COLUMNS: tuple[str, ...] = (
    "score",
    "judged_serendipitous",
    "profile_tokens",
    "category_entropy",
    "candidate_popularity",
)
# Properties of the user, repeated on each of the user's judgments: compared once per user, or a
# user with 10 candidates would count as 10 independent samples and every test would fire.
USER_COLUMNS: tuple[str, ...] = ("profile_tokens", "category_entropy")
NUMERICAL_COLUMNS: tuple[str, ...] = ("score", "profile_tokens", "category_entropy", "candidate_popularity")
CATEGORICAL_COLUMNS: tuple[str, ...] = ("judged_serendipitous",)
FEEDBACK = "feedback"  # optional: 1 = later positive engagement, 0 = none, <NA> = not known yet

_id = pa.Column(str, nullable=False, coerce=True, checks=pa.Check.str_length(min_value=1))
_nonneg = pa.Column(float, nullable=False, coerce=True, checks=pa.Check.ge(0))

JUDGMENTS = pa.DataFrameSchema(
    {
        "user_id": _id,
        "item_id": _id,
        "score": pa.Column(float, nullable=False, coerce=True, checks=pa.Check.in_range(0.0, 1.0)),
        "judged_serendipitous": pa.Column(int, nullable=False, coerce=True, checks=pa.Check.isin([0, 1])),
        "profile_tokens": pa.Column(int, nullable=False, coerce=True, checks=pa.Check.ge(0)),
        "category_entropy": _nonneg,
        "candidate_popularity": _nonneg,
        "event_timestamp": pa.Column("datetime64[ns, UTC]", nullable=False, coerce=True),
        FEEDBACK: pa.Column("Int64", nullable=True, coerce=True, required=False, checks=pa.Check.isin([0, 1])),
    },
    strict=False,
    name="judgments",
)


_EMPTY_DTYPES = {
    "user_id": object,
    "item_id": object,
    "score": float,
    "judged_serendipitous": "int64",
    "profile_tokens": "int64",
    "category_entropy": float,
    "candidate_popularity": float,
    "event_timestamp": "datetime64[ns, UTC]",
    FEEDBACK: "Int64",
}


def default_reference_path() -> Path:
    """Where validation records the reference judgments."""
    return monitoring_dir() / "reference_judgments.parquet"


def default_current_dir() -> Path:
    """Where the nearline job appends its judgments (one parquet part per run)."""
    return monitoring_dir() / "judgments"


def validate_judgments(df: pd.DataFrame, source: str = "judgments") -> pd.DataFrame:
    """Coerce and check the judgment columns; every violation in one DataError line. Zero rows are valid
    (an empty window is a result, not an error), missing columns are not."""
    if df is None or len(df.columns) == 0:
        raise DataError(f"{source}: judgments table has no columns", f"write the columns {', '.join(JUDGMENT_COLUMNS)}")
    missing = [c for c in JUDGMENT_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: judgments lack column(s) {', '.join(missing)}",
            f"write all of {', '.join(JUDGMENT_COLUMNS)} (monitoring.judgments.JUDGMENT_COLUMNS)",
        )
    if df.empty:  # pandera's coercion needs rows; give the empty frame the same dtypes
        return df.astype({c: t for c, t in _EMPTY_DTYPES.items() if c in df.columns}).reset_index(drop=True)
    try:
        out = JUDGMENTS.validate(df, lazy=True)
    except SchemaErrors as exc:
        raise DataError(_describe(JUDGMENTS, exc, source), "fix the judgments writer (see JUDGMENT_COLUMNS)") from None
    return out.sort_values(["event_timestamp", "user_id", "item_id"], kind="stable").reset_index(drop=True)


def _read_one(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{path}: cannot read judgments ({type(exc).__name__}: {exc})", "pass a parquet or csv file"
        ) from None


def load_judgments(path: str | os.PathLike[str], source: str = "judgments") -> pd.DataFrame:
    """A parquet/csv file, or a directory of parquet parts (the nearline layout), validated."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(
            f"{source} judgments not found at {p}",
            f"pass --{source} FILE_OR_DIR (pipeline parameter {source}=...), or write them with monitoring.judgments "
            f"({'write_reference' if source == 'reference' else 'append_judgments'})",
        )
    if p.is_dir():
        parts = sorted(q for q in p.glob("*.parquet") if not q.name.startswith("."))
        frames = [_read_one(q) for q in parts]
        if not frames:
            return validate_judgments(pd.DataFrame(columns=list(JUDGMENT_COLUMNS)), f"{p} (no parquet parts)")
        df = pd.concat(frames, ignore_index=True)
    else:
        df = _read_one(p)
    return validate_judgments(df, str(p))


def build_judgments(
    scores: pd.DataFrame,
    profiles: pd.DataFrame,
    item_popularity: pd.DataFrame,
    threshold: float = 0.5,
    judged_at: datetime | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Judgment rows from what a scorer already has at hand.

    scores: user_id, item_id, score (+ optional event_timestamp, and feedback/label 0/1 for validation
    data); profiles: user_id, profile_tokens, category_entropy (`seren.profiles.build_profiles` output);
    item_popularity: item_id, popularity (the item_features view). judged_serendipitous = score >= threshold;
    event_timestamp defaults to `judged_at`, else now.
    """
    out = scores.copy()
    if FEEDBACK not in out.columns and "label" in out.columns:
        out[FEEDBACK] = out["label"]
    if "event_timestamp" not in out.columns:
        out["event_timestamp"] = pd.Timestamp(judged_at) if judged_at is not None else pd.Timestamp.now(tz="UTC")
    out["judged_serendipitous"] = (out["score"] >= threshold).astype(int)
    prof = profiles[["user_id", "profile_tokens", "category_entropy"]].drop_duplicates("user_id", keep="last")
    pop = item_popularity[["item_id", "popularity"]].drop_duplicates("item_id", keep="last")
    out = out.merge(prof, on="user_id", how="left").merge(
        pop.rename(columns={"popularity": "candidate_popularity"}), on="item_id", how="left"
    )
    return validate_judgments(out[[*JUDGMENT_COLUMNS, *([FEEDBACK] if FEEDBACK in out.columns else [])]])


def write_reference(df: pd.DataFrame, path: str | os.PathLike[str] | None = None) -> Path:
    """Record the validation-time judgments (replaced atomically)."""
    out = validate_judgments(df, "reference judgments")
    if out.empty:
        raise DataError("reference judgments have no rows", "record the validated model's judgments on held-out users")
    return write_parquet(Path(path) if path is not None else default_reference_path(), out)


def append_judgments(
    df: pd.DataFrame, directory: str | os.PathLike[str] | None = None, run_id: str | None = None
) -> Path:
    """Add one nearline run's judgments as a new parquet part (atomic; re-using a run_id replaces that part,
    so a re-run of the same window does not duplicate rows)."""
    out = validate_judgments(df, "nearline judgments")
    stamp = run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%S-%fZ")
    if not re.fullmatch(r"[A-Za-z0-9_.:+-]+", stamp):
        raise ConfigError(f"run_id {stamp!r} is not a safe file name", "use letters, digits and -_.:+ only")
    d = Path(directory) if directory is not None else default_current_dir()
    return write_parquet(d / f"judgments-{stamp.replace(':', '')}.parquet", out)


def parse_window(window: str | None, flag: str = "--window") -> pd.Timedelta | None:
    """'1d', '12h', '30m', '2w' -> a duration (seren's one grammar); 'all' (or empty) -> None: no time filter."""
    if window is None or window.strip().lower() in ("", "all"):
        return None
    try:
        return pd.Timedelta(parse_duration(window, flag=flag))
    except ConfigError as exc:
        raise ConfigError(exc.problem, f"{exc.fix}, or 'all'") from None


def parse_end(end: str | datetime | None, frame: pd.DataFrame | None = None) -> pd.Timestamp:
    """Window end: 'now' (default), 'latest' (the newest judgment in `frame`), or an ISO time (naive = UTC)."""
    if end is None or (isinstance(end, str) and end.strip().lower() in ("", "now")):
        return pd.Timestamp.now(tz="UTC")
    if isinstance(end, str) and end.strip().lower() == "latest":
        if frame is None or frame.empty:
            return pd.Timestamp.now(tz="UTC")
        return frame["event_timestamp"].max()
    try:
        t = pd.Timestamp(end)
    except (ValueError, TypeError):
        raise ConfigError(
            f"--end {end!r} is not a time", "use now, latest or an ISO time like 2025-01-31T00:00Z"
        ) from None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def in_window(df: pd.DataFrame, length: pd.Timedelta | None, end: pd.Timestamp) -> pd.DataFrame:
    """Judgments with end - length < event_timestamp <= end (all up to `end` when length is None)."""
    ts = df["event_timestamp"]
    keep = ts <= end
    if length is not None:
        keep &= ts > end - length
    return df[keep].reset_index(drop=True)


def drift_frame(df: pd.DataFrame) -> pd.DataFrame:
    """DRIFT_COLUMNS with the USER_COLUMNS kept only on each user's latest judgment (NaN elsewhere; drift
    tests and means skip NaN), so judgment-level columns count judgments and user-level ones count users."""
    out = df[list(DRIFT_COLUMNS)].astype(float).reset_index(drop=True)
    latest = df.reset_index(drop=True).sort_values("event_timestamp", kind="stable").duplicated("user_id", keep="last")
    out.loc[latest.reindex(out.index).to_numpy(), list(USER_COLUMNS)] = np.nan
    return out


def attach_feedback(
    judgments: pd.DataFrame, interactions: pd.DataFrame, horizon: pd.Timedelta | None = pd.Timedelta(days=7)
) -> pd.DataFrame:
    """Fill `feedback`: 1 when the user engaged positively with the judged item after the judgment (within
    `horizon`), 0 when the interaction log covers that period without one, <NA> when it does not reach past
    the judgment yet. Values already present (e.g. validation labels) are kept."""
    out = judgments.copy()
    known = (
        out[FEEDBACK].astype("Int64") if FEEDBACK in out.columns else pd.Series(pd.NA, index=out.index, dtype="Int64")
    )
    if out.empty:
        out[FEEDBACK] = known
        return out
    pos = interactions.loc[is_positive(interactions), ["user_id", "item_id", "timestamp"]]
    pos = pos.assign(user_id=pos["user_id"].astype(str), item_id=pos["item_id"].astype(str))
    left = out[["user_id", "item_id", "event_timestamp"]].reset_index(drop=True).assign(_row=np.arange(len(out)))
    m = left.merge(pos, on=["user_id", "item_id"], how="inner")
    after = m["timestamp"] > m["event_timestamp"]
    if horizon is not None:
        after &= m["timestamp"] <= m["event_timestamp"] + horizon
    hit = np.zeros(len(out), dtype=bool)
    hit[m.loc[after, "_row"].to_numpy()] = True
    log_end = pd.to_datetime(interactions["timestamp"], utc=True).max() if len(interactions) else None
    observed = np.zeros(len(out), dtype=bool) if log_end is None else (out["event_timestamp"] < log_end).to_numpy()
    derived = pd.Series(np.where(hit, 1, 0), index=out.index, dtype="Int64").where(hit | observed, pd.NA)
    out[FEEDBACK] = known.fillna(derived)
    return out
