"""Labeling and enrichment ("collaborative data intervention", SERAL stage 2 input).

Three label sources are merged per (user, item), each with its source and confidence recorded:

* behaviour — events after the profile cutoff, judged against the profile's history: a positive
  on an item outside the engaged subcategories is serendipitous (1); a positive inside them is
  relevant but expected (0); a skip / low rating on an unexpected item is not serendipitous (0);
* human — the dataset's ground-truth labels and/or a survey CSV with a 1-5 Likert serendipity
  column;
* teacher — an LLM behind a TextBackend that answers Yes/No plus a one-sentence rationale.

Precedence is human > teacher > behaviour (the winning source and all contributing sources are
recorded); a teacher rationale is kept whenever the teacher agrees with the final label.

Leakage: profiles for labeling must be built with `as_of` = a cutoff before the labeled events
(`seren.profiles.io.labeling_cutoffs`); profiles built on the whole history are refused. A
profile table may hold several snapshots per user (`build_profile_snapshots`), with global or
per-user cutoffs: a user's snapshot k labels that user's events in [cutoff_k, cutoff_k+1),
judged against the profile as of cutoff_k, so every label is about behaviour its prompt has
not seen. Dataset labels go to the window of their timestamp; survey rows (no timestamp) and
undated labels go to the user's latest snapshot.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren.data.dataset import Dataset
from seren.data.schema import is_positive
from seren.errors import ConfigError, DataError, ServiceError
from seren.io import atomic_dir, write_json
from seren.llm import prompts
from seren.llm.relation import candidate_block
from seren.profiles.build import LOW_RATING
from seren.profiles.text import count_tokens, item_text

log = logging.getLogger(__name__)

PRECEDENCE = {"human": 0, "teacher": 1, "behaviour": 2}
LABEL_COLUMNS = ["user_id", "item_id", "label", "source", "confidence", "rationale", "detail", "sources", "conflict"]
# Confidence of a behaviour label by the strongest signal behind it.
POSITIVE_CONFIDENCE = {"purchase": 0.8, "like": 0.75, "rating": 0.75, "click": 0.6}
INSIDE_CONFIDENCE = 0.7
NEGATIVE_CONFIDENCE = {"rating": 0.65, "skip": 0.55}
TEACHER_CONFIDENCE = 0.8
TEACHER_PROBE = 3  # consecutive failures at the start that abort instead of hammering a dead endpoint

TEACHER_INSTRUCTION = "Reply with Yes or No first, then one sentence explaining why."


# --------------------------------------------------------------------------------------------
# label sources


KEY = ["user_id", "item_id", "as_of"]
_SOURCE_COLUMNS = [*KEY, "label", "confidence", "rationale", "detail"]


def _cutoffs(profiles: pd.DataFrame) -> pd.DatetimeIndex:
    """The profiles' snapshot cutoffs, ascending; refuses profiles without one (leakage)."""
    ts = profiles["as_of"] if "as_of" in profiles.columns else pd.Series([pd.NaT] * len(profiles))
    if len(ts) == 0 or ts.isna().any():
        raise ConfigError(
            "the profiles were built from the whole history, so the labeled events would leak into the prompts",
            "build them with a cutoff: `seren profiles build --label-frac 0.3` or build_profiles(as_of=...)",
        )
    return pd.DatetimeIndex(_utc_ns(ts).unique()).sort_values()


def _utc_ns(ts: pd.Series) -> pd.Series:
    """UTC nanosecond timestamps, whatever unit a parquet round trip left behind."""
    return pd.to_datetime(ts, utc=True).astype("datetime64[ns, UTC]")


def _window(df: pd.DataFrame, profiles: pd.DataFrame) -> pd.Series:
    """Per row of (user_id, timestamp): the as_of of the user's snapshot whose window
    [cutoff_k, cutoff_k+1) holds the time — NaT before the user's first cutoff, without a profile
    or without a time. Works for global and per-user cutoffs alike."""
    left = pd.DataFrame({"user_id": df["user_id"].astype(str), "t": _utc_ns(df["timestamp"])}, index=df.index)
    left = left.dropna(subset=["t"]).reset_index(names="_row").sort_values("t", kind="stable")
    right = profiles[["user_id", "as_of"]].drop_duplicates().copy()
    right["as_of"] = _utc_ns(right["as_of"])
    right = right.sort_values("as_of", kind="stable")
    m = pd.merge_asof(left, right, left_on="t", right_on="as_of", by="user_id", direction="backward")
    return m.set_index("_row")["as_of"].reindex(df.index)


def _latest(profiles: pd.DataFrame) -> pd.Series:
    """Each user's latest snapshot cutoff (for judgments without a time: surveys, undated labels)."""
    return _utc_ns(profiles["as_of"]).groupby(profiles["user_id"].astype(str)).max()


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=_SOURCE_COLUMNS)


def _interest_pairs(profiles: pd.DataFrame) -> pd.DataFrame:
    pairs = profiles[["user_id", "as_of", "interests"]].explode("interests").dropna(subset=["interests"])
    return pairs.rename(columns={"interests": "category"}).drop_duplicates()


def behaviour_labels(ds: Dataset, profiles: pd.DataFrame) -> pd.DataFrame:
    """Labels from engagement in each snapshot's window, relative to that snapshot's profile history."""
    _cutoffs(profiles)
    ev = ds.interactions[ds.interactions["user_id"].isin(profiles["user_id"])].copy()
    ev["as_of"] = _window(ev, profiles)
    ev = ev.dropna(subset=["as_of"]).merge(profiles[["user_id", "as_of"]], on=["user_id", "as_of"])
    if ev.empty:
        return _empty()
    ev = ev.merge(ds.items[["item_id", "category"]], on="item_id", how="left")
    ev["pos"] = is_positive(ev).to_numpy()
    ev["neg"] = ~ev["pos"] & ((ev["event"] == "skip") | (ev["rating"].fillna(99.0) < LOW_RATING))
    inside = ev[["user_id", "as_of", "category"]].merge(_interest_pairs(profiles), how="left", indicator=True)["_merge"]
    ev["inside"] = (inside == "both").to_numpy()
    ev["kind"] = np.where(ev["event"].isin(list(POSITIVE_CONFIDENCE)), ev["event"], "rating")
    ev["pos_conf"] = np.where(ev["pos"], ev["kind"].map(POSITIVE_CONFIDENCE).fillna(0.6), 0.0)
    ev["neg_conf"] = np.where(
        ev["neg"], np.where(ev["event"] == "skip", NEGATIVE_CONFIDENCE["skip"], NEGATIVE_CONFIDENCE["rating"]), 0.0
    )
    g = ev.groupby(KEY, sort=True).agg(
        pos=("pos", "any"),
        neg=("neg", "any"),
        inside=("inside", "first"),
        pos_conf=("pos_conf", "max"),
        neg_conf=("neg_conf", "max"),
    )
    g = g.reset_index()
    serendipitous = g["pos"] & ~g["inside"]
    expected = g["pos"] & g["inside"]
    rejected = ~g["pos"] & g["neg"] & ~g["inside"]
    g = g[serendipitous | expected | rejected].copy()
    g["label"] = (g["pos"] & ~g["inside"]).astype(int)
    g["confidence"] = np.select(
        [g["label"] == 1, g["pos"]], [g["pos_conf"], INSIDE_CONFIDENCE], default=g["neg_conf"]
    ).astype(float)
    g["detail"] = np.select(
        [g["label"] == 1, g["pos"]],
        ["positive outside profile", "positive inside profile (relevant, expected)"],
        default="skipped or low-rated unexpected item",
    )
    g["rationale"] = None
    return g[_SOURCE_COLUMNS].reset_index(drop=True)


def dataset_labels(ds: Dataset, profiles: pd.DataFrame) -> pd.DataFrame:
    """The dataset's own human / ground-truth judgments, each in the snapshot window of its timestamp
    (labels before the first cutoff are dropped; undated ones go to the latest snapshot)."""
    if ds.labels is None or ds.labels.empty:
        return _empty()
    _cutoffs(profiles)
    lab = ds.labels
    latest = lab["user_id"].astype(str).map(_latest(profiles))
    if "timestamp" in lab.columns:
        as_of = _window(lab, profiles).where(lab["timestamp"].notna(), latest)
    else:
        as_of = latest
    detail = lab["source"].astype(str) if "source" in lab.columns else pd.Series("dataset", index=lab.index)
    out = pd.DataFrame(
        {
            "user_id": lab["user_id"].astype(str).to_numpy(),
            "item_id": lab["item_id"].astype(str).to_numpy(),
            "as_of": as_of.to_numpy(),
            "label": lab["serendipitous"].astype(int).to_numpy(),
            "confidence": 1.0,
            "rationale": None,
            "detail": detail.to_numpy(),
        }
    )
    out = out.dropna(subset=["as_of"])
    out["as_of"] = _utc_ns(out["as_of"])
    return out.drop_duplicates(KEY, keep="first").reset_index(drop=True)


def _find_column(cols: list[str], wanted: tuple[str, ...]) -> str | None:
    low = {c.lower().strip(): c for c in cols}
    for w in wanted:
        if w in low:
            return low[w]
    for w in wanted:
        for lc, c in low.items():
            if w in lc:
                return c
    return None


def survey_labels(path: str | os.PathLike[str], ds: Dataset) -> pd.DataFrame:
    """Survey CSV (user_id, item_id, a 1-5 serendipity Likert column, optional comment) -> labels.

    Ratings of one pair are averaged; label = mean > 3, confidence = |mean - 3| / 2 (a neutral 3
    carries no information and is dropped).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"survey file {path} does not exist", "pass the path of a CSV with user_id, item_id, serendipity"
        )
    try:
        df = pd.read_csv(path, dtype={"user_id": str, "item_id": str})
    except Exception as exc:  # pandas raises several parser errors
        raise DataError(
            f"{path}: cannot read CSV ({type(exc).__name__})", "pass a comma-separated file with a header"
        ) from None
    cols = list(df.columns)
    likert = _find_column(cols, ("serendipity", "serendipitous", "serendip"))
    missing = [c for c in ("user_id", "item_id") if c not in cols] + ([] if likert else ["serendipity"])
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}", "add user_id, item_id and a 1-5 serendipity column"
        )
    if df.empty:
        raise DataError(f"{path}: survey has no rows", "pass a survey with at least one judgment")
    score = pd.to_numeric(df[likert], errors="coerce")
    bad = score.isna() | ~score.between(1, 5)
    if bad.any():
        raise DataError(
            f"{path}: {int(bad.sum())} row(s) with a {likert!r} value outside 1-5 (e.g. {df.loc[bad, likert].iloc[0]!r})",
            "use a Likert score from 1 (not at all) to 5 (very serendipitous)",
        )
    df["user_id"] = df["user_id"].astype(str).str.strip()
    df["item_id"] = df["item_id"].astype(str).str.strip()
    known_users = set(ds.interactions["user_id"]) | (set(ds.users["user_id"]) if ds.users is not None else set())
    for col, known in (("user_id", known_users), ("item_id", set(ds.items["item_id"]))):
        unknown = pd.unique(df.loc[~df[col].isin(known), col])
        if len(unknown):
            raise DataError(
                f"{path}: {len(unknown)} unknown {col}(s) (e.g. {', '.join(map(repr, unknown[:3]))})",
                f"use {col}s that exist in the dataset",
            )
    comment = _find_column([c for c in cols if c != likert], ("rationale", "comment", "reason", "why"))
    df["_score"] = score
    agg: dict[str, Any] = {"_score": ("_score", "mean"), "n": ("_score", "size")}
    if comment:
        agg["rationale"] = (
            comment,
            lambda s: next((str(x).strip() for x in s if isinstance(x, str) and x.strip()), None),
        )
    g = df.groupby(["user_id", "item_id"], sort=True).agg(**agg).reset_index()
    g = g[g["_score"] != 3.0]
    out = pd.DataFrame(
        {
            "user_id": g["user_id"],
            "item_id": g["item_id"],
            "label": (g["_score"] > 3).astype(int),
            "confidence": ((g["_score"] - 3).abs() / 2).round(4),
            "rationale": g["rationale"] if comment else None,
            "detail": "survey (n=" + g["n"].astype(str) + ")",
        }
    )
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# teacher


_ANSWER = re.compile(r"^\W*(?:(?:final\s+)?answer\s*[:\-]\s*)?\**\s*(yes|no)\b\W*(.*)$", re.IGNORECASE | re.DOTALL)
_JSON_LABEL = ("label", "answer", "serendipitous", "judgment", "judgement")
_JSON_WHY = ("rationale", "reason", "explanation", "why")


def _sentence(text: str) -> str | None:
    text = " ".join(str(text).split()).strip(" -:*\"'")
    if not text:
        return None
    text = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0][:240].strip()
    if len(text) < 3:
        return None
    return text if text[-1] in ".!?" else text + "."


def _as_label(v: Any) -> int | None:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float) and v in (0, 1):
        return int(v)
    s = str(v).strip().lower()
    return {"yes": 1, "true": 1, "1": 1, "no": 0, "false": 0, "0": 0}.get(s)


def parse_teacher(text: str) -> tuple[int, str | None] | None:
    """(label, rationale) from a teacher reply, or None when it is not a clear Yes/No.

    Accepts "Yes. Because ...", "Answer: No - ...", "**Yes**, ..." and a JSON object with a
    label/answer and rationale/reason field; anything else (hedging, both answers, prose) is None.
    """
    if not isinstance(text, str):
        return None
    t = text.strip()
    m = re.search(r"\{.*\}", t, re.DOTALL)
    if m:
        try:
            obj = json.loads(m.group(0))
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            low = {str(k).lower(): v for k, v in obj.items()}
            lab = next((_as_label(low[k]) for k in _JSON_LABEL if k in low), None)
            if lab is not None:
                why = next((low[k] for k in _JSON_WHY if k in low and low[k]), None)
                return lab, _sentence(why) if why else None
    m = _ANSWER.match(t)
    if not m:
        return None
    label = 1 if m.group(1).lower() == "yes" else 0
    rest = m.group(2)
    first_words = re.findall(r"[a-z]+", rest.lower())[:3]
    if ("yes" in first_words) or ("no" in first_words) or first_words[:1] == ["or"]:
        return None  # "Yes or no...", "yes/no" — not an answer
    rest = re.sub(r"^(?:reason|rationale|because)\s*[:\-]\s*", "", rest.strip(), flags=re.IGNORECASE)
    return label, _sentence(rest)


def teacher_prompt(profile_text: str, item_txt: str) -> str:
    return f"{prompts.SYSTEM}\n\n{prompts.user_message(profile_text, item_txt)}\n{TEACHER_INSTRUCTION}\nAnswer:"


def teacher_labels(
    pairs: pd.DataFrame,
    teacher: Any,
    max_new_tokens: int = 64,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Ask the teacher about each (user_id, item_id, as_of, profile_text, item_text) row.

    Unparseable replies are counted and skipped; errors are counted and logged. If the first
    TEACHER_PROBE calls all raise, or no call at all succeeds, a ServiceError says so.
    """
    stats: dict[str, Any] = {"teacher_calls": 0, "teacher_ok": 0, "teacher_errors": 0, "teacher_garbage": 0}
    examples: list[str] = []
    rows = list(pairs[[*KEY, "profile_text", "item_text"]].itertuples(index=False, name=None))

    def ask(row: tuple[Any, ...]) -> tuple[str, Any]:
        try:
            return "ok", teacher.complete(teacher_prompt(row[3], row[4]), max_new_tokens=max_new_tokens)
        except Exception as exc:  # any backend failure is counted, never fatal per call
            return "error", f"{type(exc).__name__}: {exc}"

    results: list[tuple[str, Any]] = []
    for row in rows[:TEACHER_PROBE]:
        results.append(ask(row))
        if on_progress:
            on_progress(len(results), len(rows))
    if results and all(r[0] == "error" for r in results) and len(results) == min(TEACHER_PROBE, len(rows)):
        raise ServiceError(
            f"teacher backend failed on all of the first {len(results)} calls ({results[0][1]})",
            "check the endpoint (SEREN_OPENAI_BASE_URL / model) or run without a teacher",
        )
    rest = rows[TEACHER_PROBE:]
    if workers > 1 and rest:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for r in pool.map(ask, rest):
                results.append(r)
                if on_progress:
                    on_progress(len(results), len(rows))
    else:
        for row in rest:
            results.append(ask(row))
            if on_progress:
                on_progress(len(results), len(rows))

    out = []
    for row, (status, value) in zip(rows, results, strict=True):
        stats["teacher_calls"] += 1
        if status == "error":
            stats["teacher_errors"] += 1
            examples.append(str(value))
            continue
        parsed = parse_teacher(value)
        if parsed is None:
            stats["teacher_garbage"] += 1
            examples.append(f"unparseable reply {str(value)[:60]!r}")
            continue
        stats["teacher_ok"] += 1
        out.append((row[0], row[1], row[2], parsed[0], TEACHER_CONFIDENCE, parsed[1], "teacher llm"))
    if stats["teacher_errors"] or stats["teacher_garbage"]:
        log.warning(
            "teacher: %d of %d calls failed (%d errors, %d unparseable); e.g. %s",
            stats["teacher_errors"] + stats["teacher_garbage"],
            stats["teacher_calls"],
            stats["teacher_errors"],
            stats["teacher_garbage"],
            examples[0],
        )
    if stats["teacher_calls"] and not stats["teacher_ok"]:
        raise ServiceError(
            f"teacher: all {stats['teacher_calls']} calls failed ({stats['teacher_errors']} errors, "
            f"{stats['teacher_garbage']} unparseable; e.g. {examples[0]})",
            "check the teacher endpoint and model, or run without a teacher",
        )
    return pd.DataFrame(out, columns=_SOURCE_COLUMNS), stats


# --------------------------------------------------------------------------------------------
# merge


def build_labels(
    ds: Dataset,
    profiles: pd.DataFrame,
    teacher: Any | None = None,
    human_csv: str | os.PathLike[str] | None = None,
    *,
    teacher_max: int | None = None,
    teacher_workers: int = 1,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Merged labels per (user, item, snapshot): LABEL_COLUMNS + as_of (the profile snapshot).

    `sources` lists every source that judged the pair and `conflict` says whether they disagreed.
    The teacher judges every labeled pair (or a seeded sample of `teacher_max`), so it both adds
    its own label and supplies rationales for pairs whose final label it agrees with.
    """
    cutoffs = _cutoffs(profiles)
    profiles = profiles.assign(as_of=_utc_ns(profiles["as_of"]))
    have = profiles[["user_id", "as_of"]].drop_duplicates()
    survey = None
    if human_csv is not None:
        survey = survey_labels(human_csv, ds)
        survey = survey.assign(as_of=survey["user_id"].map(_latest(profiles)))[_SOURCE_COLUMNS]
    parts: list[pd.DataFrame] = []
    dropped = 0
    for source, df in (
        ("behaviour", behaviour_labels(ds, profiles)),
        ("human", dataset_labels(ds, profiles)),
        ("human", survey),
    ):
        if df is None or df.empty:
            continue
        df = df.merge(have, on=["user_id", "as_of"], how="left", indicator=True)
        keep = (df.pop("_merge") == "both") & df["item_id"].isin(ds.items["item_id"])
        dropped += int((~keep).sum())
        parts.append(df[keep].assign(source=source))
    if not parts:
        raise DataError(
            f"no labels: no events, dataset labels or survey rows at or after the profile cutoff "
            f"{cutoffs[0].isoformat()}",
            "use an earlier cutoff (a larger --label-frac) or pass a survey CSV",
        )
    labels = pd.concat(parts, ignore_index=True)

    teacher_stats: dict[str, Any] = {}
    if teacher is not None:
        pairs = labels[KEY].drop_duplicates().sort_values(KEY)
        if teacher_max is not None and len(pairs) > teacher_max:
            pairs = pairs.sample(n=teacher_max, random_state=seed).sort_values(KEY)
        texts = item_text(ds.items).set_axis(ds.items["item_id"].to_numpy())
        pairs = pairs.merge(profiles[["user_id", "as_of", "profile_text"]], on=["user_id", "as_of"])
        pairs["item_text"] = pairs["item_id"].map(texts).to_numpy()
        tl, teacher_stats = teacher_labels(pairs, teacher, workers=teacher_workers, on_progress=on_progress)
        labels = pd.concat([labels, tl.assign(source="teacher")], ignore_index=True)

    labels["prec"] = labels["source"].map(PRECEDENCE)
    labels = labels.sort_values([*KEY, "prec", "confidence"], ascending=[True] * 4 + [False], kind="stable")
    grp = labels.groupby(KEY, sort=False)
    sources = grp["source"].agg(lambda s: ",".join(sorted(set(s), key=PRECEDENCE.get)))
    conflict = grp["label"].nunique() > 1
    teacher_rows = labels[labels["source"] == "teacher"].set_index(KEY)
    out = grp.head(1).set_index(KEY)
    out["sources"] = sources
    out["conflict"] = conflict
    if not teacher_rows.empty:
        t = teacher_rows.reindex(out.index)
        agree = out["rationale"].isna() & (t["label"] == out["label"]) & t["rationale"].notna()
        out.loc[agree, "rationale"] = t.loc[agree, "rationale"]
    out = out.reset_index()
    out["label"] = out["label"].astype(int)
    out["confidence"] = out["confidence"].astype(float)
    out["rationale"] = out["rationale"].astype(object).where(out["rationale"].notna(), None)
    out = out[[*LABEL_COLUMNS, "as_of"]].sort_values(KEY, kind="stable").reset_index(drop=True)
    out.attrs["metrics"] = (
        label_metrics(out)
        | teacher_stats
        | {
            "as_of": cutoffs[0].isoformat(),
            "n_snapshots": int(profiles.groupby("user_id").size().max()),
            "dropped_no_profile_or_item": dropped,
        }
    )
    return out


def label_metrics(labels: pd.DataFrame) -> dict[str, Any]:
    n = len(labels)
    pos = int(labels["label"].sum()) if n else 0
    out: dict[str, Any] = {
        "n_labels": n,
        "n_positive": pos,
        "n_negative": n - pos,
        "positive_rate": round(pos / n, 4) if n else 0.0,
        "n_conflicts": int(labels["conflict"].sum()) if "conflict" in labels.columns else 0,
        "n_with_rationale": int(labels["rationale"].notna().sum()),
    }
    for s in PRECEDENCE:
        out[f"labels_{s}"] = int((labels["source"] == s).sum())
    return out


# --------------------------------------------------------------------------------------------
# training data

SFT_COLUMNS = ["user_id", "item_id", "prompt", "completion", "label", "source", "confidence", "as_of"]
PREF_COLUMNS = ["user_id", "item_id", "prompt", "chosen", "rejected", "label", "source", "confidence", "as_of"]
EVAL_COLUMNS = ["user_id", "item_id", "profile_text", "item_text", "label", "source", "as_of", "relation_fields"]
TABLES = {
    "sft_train": SFT_COLUMNS,
    "sft_test": SFT_COLUMNS,
    "pref_train": PREF_COLUMNS,
    "pref_test": PREF_COLUMNS,
    "eval_candidates": EVAL_COLUMNS,
}


@dataclass
class TrainingData:
    """SFT examples, preference pairs and ranking candidates, split by user."""

    sft_train: pd.DataFrame
    sft_test: pd.DataFrame
    pref_train: pd.DataFrame
    pref_test: pd.DataFrame
    eval_candidates: pd.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)
    labels: pd.DataFrame | None = None  # the merged labels behind the examples (provenance)

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """All tables appear at once (atomic directory swap) or not at all."""
        out_dir = Path(out_dir)
        with atomic_dir(out_dir) as tmp:
            for name in TABLES:
                getattr(self, name).to_parquet(tmp / f"{name}.parquet", index=False)
            if self.labels is not None:
                self.labels.to_parquet(tmp / "labels.parquet", index=False)
            write_json(tmp / "metrics.json", self.metrics)
        return out_dir

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainingData:
        path = Path(path)
        missing = [n for n in TABLES if not (path / f"{n}.parquet").exists()]
        if missing:
            raise DataError(
                f"{path} is not a training-data directory (missing {', '.join(missing)})",
                "run the labeling step (`seren profiles build` then labeling) to create it",
            )
        tables = {n: pd.read_parquet(path / f"{n}.parquet") for n in TABLES}
        metrics = json.loads((path / "metrics.json").read_text()) if (path / "metrics.json").exists() else {}
        labels = pd.read_parquet(path / "labels.parquet") if (path / "labels.parquet").exists() else None
        return cls(**tables, metrics=metrics, labels=labels)


def _split_users(users: np.ndarray, test_frac: float, seed: int) -> tuple[set[str], set[str]]:
    if not 0.0 < test_frac < 1.0:
        raise DataError(f"test fraction {test_frac} is outside (0, 1)", "pass e.g. 0.25")
    if len(users) < 2:
        raise DataError(f"only {len(users)} labeled user(s); a split by user needs at least 2", "label more users")
    order = np.random.default_rng(seed).permutation(np.sort(users))
    n_test = min(max(1, int(round(test_frac * len(order)))), len(order) - 1)
    return set(order[n_test:].tolist()), set(order[:n_test].tolist())


def _balance(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Down-sample the majority class, keeping its most confident examples."""
    counts = df["label"].value_counts()
    if len(counts) < 2:
        only = "positive" if counts.index[0] == 1 else "negative"
        raise DataError(
            f"all {len(df)} training labels are {only}; a serendipity judge needs both classes",
            "use a later/earlier cutoff, add human labels, or a teacher",
        )
    n = int(counts.min())
    shuffled = df.sample(frac=1.0, random_state=seed)
    shuffled = shuffled.sort_values("confidence", ascending=False, kind="stable")
    out = shuffled.groupby("label", sort=True).head(n)
    return out.sort_values(["user_id", "as_of", "item_id"], kind="stable").reset_index(drop=True)


def _candidates(df: pd.DataFrame, max_candidates: int, seed: int) -> pd.DataFrame:
    """Per held-out user with both classes: up to `max_candidates` labeled items (half positives
    max); an item judged in several snapshots keeps its latest judgment."""
    df = df.sort_values("as_of", kind="stable").drop_duplicates(["user_id", "item_id"], keep="last")
    both = df.groupby("user_id")["label"].transform("nunique") == 2
    d = df[both].sample(frac=1.0, random_state=seed)
    d["r"] = d.groupby(["user_id", "label"]).cumcount()
    n_pos = d[d["label"] == 1].groupby("user_id").size()
    pos_keep = np.minimum(n_pos, max(1, max_candidates // 2))
    d["cap"] = np.where(d["label"] == 1, d["user_id"].map(pos_keep), max_candidates - d["user_id"].map(pos_keep))
    out = d[d["r"] < d["cap"]]
    return out[EVAL_COLUMNS].sort_values(["user_id", "as_of", "item_id"], kind="stable").reset_index(drop=True)


_P, _I = "\x00SEREN_PROFILE\x00", "\x00SEREN_ITEM\x00"


def render_prompts(
    tokenizer: Any, profile_texts: list[str], item_texts: list[str], fields: list[str] | None = None
) -> list[str]:
    """`prompts.build_prompt` for many rows at once.

    The chat template is rendered once around two sentinels and filled by string concatenation;
    checked against the real `build_prompt` on a sample of rows, with a per-row fallback when the
    template transforms its content (so the output is always exactly `build_prompt`'s).
    """
    n = len(profile_texts)
    fields = list(fields) if fields is not None else [None] * n  # relation fields (JSON) per row
    frame = prompts.build_prompt(tokenizer, _P, _I)
    if frame.count(_P) == 1 and frame.count(_I) == 1 and frame.index(_P) < frame.index(_I):
        head, rest = frame.split(_P)
        mid, tail = rest.split(_I)
        out = [
            head + p.strip() + mid + candidate_block(p, t, f or None) + tail
            for p, t, f in zip(profile_texts, item_texts, fields, strict=True)
        ]
        probe = sorted({0, n - 1, *np.random.default_rng(0).integers(0, max(n, 1), size=min(n, 16)).tolist()})
        if n == 0 or all(
            out[i] == prompts.build_prompt(tokenizer, profile_texts[i], item_texts[i], fields[i] or None) for i in probe
        ):
            return out
    return [
        prompts.build_prompt(tokenizer, p, t, f or None)
        for p, t, f in zip(profile_texts, item_texts, fields, strict=True)
    ]


def build_training_data(
    labels: pd.DataFrame,
    profiles: pd.DataFrame,
    items: pd.DataFrame,
    tokenizer: Any,
    test_frac: float = 0.25,
    seed: int = 0,
    max_candidates: int = 20,
) -> TrainingData:
    """SFT examples + preference pairs (balanced train split) + ranking candidates, split by user.

    Train classes are balanced by down-sampling; the test split keeps the natural class ratio so
    AUC/calibration are measured on the distribution the model will see.
    """
    snap = "as_of" in labels.columns and "as_of" in profiles.columns
    on = ["user_id", "as_of"] if snap else ["user_id"]
    # the relation line comes from the profile's structured fields (seren.llm.relation), not its prose
    fcol = ["relation_fields"] if "relation_fields" in profiles.columns else []
    prof = profiles[[*on, "profile_text", *fcol]].copy()
    labels = labels.copy()
    if snap:  # parquet round trips may change the datetime unit; compare as UTC nanoseconds
        prof["as_of"] = _utc_ns(prof["as_of"])
        labels["as_of"] = _utc_ns(labels["as_of"])
    else:
        labels["as_of"] = pd.NaT
    prof = prof.drop_duplicates(on)
    texts = pd.DataFrame({"item_id": items["item_id"].astype(str).to_numpy(), "item_text": item_text(items).to_numpy()})
    df = labels.merge(prof, on=on, how="inner").merge(texts, on="item_id", how="inner")
    n_unjoined = len(labels) - len(df)
    if df.empty:
        raise DataError("no label matches a profile and an item", "build labels and profiles from the same dataset")
    df = df.drop_duplicates(["user_id", "item_id", "as_of"], keep="first")
    if "relation_fields" not in df.columns:
        df["relation_fields"] = ""
    df["relation_fields"] = df["relation_fields"].fillna("").astype(str)
    df["prompt"] = render_prompts(
        tokenizer, df["profile_text"].tolist(), df["item_text"].tolist(), df["relation_fields"].tolist()
    )
    # Identical prompts (same profile text + item) must carry one answer: keep the most confident,
    # drop the prompt entirely when its labels contradict each other.
    contradictory = df.groupby("prompt")["label"].transform("nunique") > 1
    n_contradictory = int(contradictory.sum())
    df = df[~contradictory].sort_values("confidence", ascending=False, kind="stable")
    n_before = len(df)
    df = df.drop_duplicates("prompt", keep="first").sort_values(["user_id", "as_of", "item_id"], kind="stable")
    n_duplicates = n_before - len(df)
    df["label"] = df["label"].astype(int)
    rat = df["rationale"].where(df["rationale"].notna(), None) if "rationale" in df.columns else [None] * len(df)
    df["completion"] = [prompts.completion(bool(lab), r) for lab, r in zip(df["label"], rat, strict=True)]
    df["chosen"] = df["completion"]
    df["rejected"] = [prompts.completion(not bool(lab)) for lab in df["label"]]

    train_users, test_users = _split_users(df["user_id"].unique(), test_frac, seed)
    assert not train_users & test_users, "user split must be disjoint"
    train = _balance(df[df["user_id"].isin(train_users)], seed)
    test = df[df["user_id"].isin(test_users)].reset_index(drop=True)
    assert set(train["user_id"]).isdisjoint(set(test["user_id"])), "a user is in both train and test"
    cands = _candidates(test, max_candidates, seed)

    # Prompt length statistics on a seeded sample: tokenizing every prompt costs more than the rest.
    sample = df["prompt"].sample(n=min(len(df), 2000), random_state=seed)
    tok = count_tokens(tokenizer, sample.tolist())
    metrics = {
        "n_examples": int(len(df)),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "n_train_users": len(set(train["user_id"])),
        "n_test_users": len(test_users),
        "train_positive_rate": round(float(train["label"].mean()), 4),
        "test_positive_rate": round(float(test["label"].mean()), 4) if len(test) else 0.0,
        "n_eval_users": int(cands["user_id"].nunique()),
        "n_eval_candidates": int(len(cands)),
        "n_duplicates_dropped": n_duplicates,
        "n_contradictory_dropped": n_contradictory,
        "n_unjoined_labels": int(n_unjoined),
        "mean_prompt_tokens": round(float(tok.mean()), 1),
        "max_prompt_tokens": int(tok.max()),
        "n_with_rationale_train": int(train["completion"].str.len().gt(3).sum()),
        "test_frac": test_frac,
        "seed": seed,
    }
    if "source" in train.columns:
        for s in PRECEDENCE:
            metrics[f"train_source_{s}"] = int((train["source"] == s).sum())
    return TrainingData(
        sft_train=train[SFT_COLUMNS],
        sft_test=test[SFT_COLUMNS],
        pref_train=train[PREF_COLUMNS],
        pref_test=test[PREF_COLUMNS],
        eval_candidates=cands,
        metrics=metrics,
    )


# --------------------------------------------------------------------------------------------
# one call for the CLI and the KFP component


def run_labeling(
    data_dir: str | os.PathLike[str],
    profiles_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    base_model: str = "smollm2",
    human_csv: str | None = None,
    teacher: str = "none",
    teacher_kwargs: dict[str, Any] | None = None,
    teacher_max: int | None = None,
    test_frac: float = 0.25,
    seed: int = 0,
) -> dict[str, Any]:
    """Dataset dir + profiles parquet -> training-data dir (atomic) + merged labels; returns metrics."""
    from seren.data.dataset import load_dataset
    from seren.profiles.io import read_profiles
    from seren.profiles.text import load_tokenizer

    ds = load_dataset(data_dir)
    profiles = read_profiles(profiles_path)
    backend = None
    if teacher and teacher != "none":
        from seren.llm.backends import get_backend

        backend = get_backend(teacher, **(teacher_kwargs or {}))
    labels = build_labels(
        ds, profiles, teacher=backend, human_csv=human_csv or None, teacher_max=teacher_max, seed=seed
    )
    td = build_training_data(labels, profiles, ds.items, load_tokenizer(base_model), test_frac=test_frac, seed=seed)
    td.metrics = {**labels.attrs["metrics"], **td.metrics}
    budget = (profiles.attrs.get("metrics") or {}).get("token_budget")
    if budget:  # the prompt recipe travels with the training data into the model cards
        from seren.serengpt.recipe import prompt_recipe

        td.metrics["prompt"] = prompt_recipe(int(budget))
    td.labels = labels
    td.save(out_dir)
    return json.loads(json.dumps(td.metrics, default=str))
