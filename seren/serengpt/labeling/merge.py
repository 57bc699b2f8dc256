"""Merge of the label sources per (user, item, snapshot): precedence human > teacher > behaviour,
every contributing source and any disagreement recorded, teacher rationales kept where the
teacher agrees with the final label."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pandas as pd

from seren.data.dataset import Dataset
from seren.errors import DataError
from seren.profiles.text import item_text
from seren.serengpt.labeling.sources import (
    _SOURCE_COLUMNS,
    KEY,
    _cutoffs,
    _latest,
    _utc_ns,
    behaviour_labels,
    dataset_labels,
    survey_labels,
)
from seren.serengpt.labeling.teacher import teacher_labels

PRECEDENCE = {"human": 0, "teacher": 1, "behaviour": 2}
LABEL_COLUMNS = ["user_id", "item_id", "label", "source", "confidence", "rationale", "detail", "sources", "conflict"]


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
