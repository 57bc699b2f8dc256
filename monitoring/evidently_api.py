"""Every call into Evidently (pinned 0.7.23) lives here, so an Evidently upgrade touches one file.

Evidently 0.7 has two APIs: the new `Report([...]).run(current, reference)` returning a
`Snapshot`, and `evidently.legacy` (0.4-style). We use only the new one: `DataDriftPreset` and
`ValueDrift` for judgment drift, `Precision`/`Recall` on a `BinaryClassification` definition for
judgment quality, and the recsys metrics (`Novelty`, `Diversity`, `Serendipity`,
`Personalization`, `PopularityBiasMetric`) on a `Recsys` ranking definition. The new metrics
delegate to the legacy implementations; their exact definitions (which differ from
`seren.metrics` in places) are spelled out in `monitoring.recsys`.

Results come back as plain dicts read from `Snapshot.dict()`, looked up by metric configuration,
not by position (Evidently de-duplicates identical metrics).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from monitoring.judgments import CATEGORICAL_COLUMNS, DRIFT_COLUMNS, FEEDBACK, NUMERICAL_COLUMNS, drift_frame
from seren.errors import ConfigError
from seren.io import atomic_path

EVIDENTLY_VERSION = "0.7.23"
WORKSPACE_PROJECT = "seren-monitoring"


def check_version() -> str:
    """The wrapper is written against one Evidently release; refuse others with one line.

    Also the first import of Evidently, done once with its dependencies' deprecation notices (litestar,
    numpy.core) silenced: they are about Evidently's code, not ours.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import evidently
        import evidently.metrics
        import evidently.presets
        import evidently.ui.workspace  # noqa: F401

    if evidently.__version__ != EVIDENTLY_VERSION:
        raise ConfigError(
            f"Evidently {evidently.__version__} is installed; monitoring is pinned to {EVIDENTLY_VERSION}",
            f"pip install evidently=={EVIDENTLY_VERSION} (see setup.cfg)",
        )
    return evidently.__version__


def _num(value: Any) -> float | None:
    """Evidently values -> JSON-safe floats (NaN and inf, e.g. a metric over no rows, become None)."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _metrics(snapshot: Any) -> list[dict[str, Any]]:
    return snapshot.dict()["metrics"]


def _find(snapshot: Any, metric_type: str, **config: Any) -> dict[str, Any] | None:
    """The top-level metric of that type ("evidently:metric_v2:<type>") whose config has these values."""
    for m in _metrics(snapshot):
        cfg = m["config"]
        if cfg.get("type", "").rsplit(":", 1)[-1] == metric_type and all(cfg.get(k) == v for k, v in config.items()):
            return m
    return None


def _test_status(snapshot: Any) -> dict[str, str]:
    """metric id -> worst test status (FAIL > WARNING > SUCCESS)."""
    order = {"SUCCESS": 0, "WARNING": 1, "ERROR": 2, "FAIL": 3}
    out: dict[str, str] = {}
    for t in snapshot.dict().get("tests", []):
        mid = t["metric_config"]["metric_id"]
        if order.get(t["status"], 0) >= order.get(out.get(mid, "SUCCESS"), 0):
            out[mid] = t["status"]
    return out


def _run(
    metrics: list[Any],
    current: Any,
    reference: Any | None,
    *,
    name: str,
    timestamp: datetime | None,
    tags: Sequence[str],
    metadata: dict[str, Any] | None,
    additional: dict[str, Any] | None = None,
) -> Any:
    check_version()
    from evidently import Report

    report = Report(metrics, metadata=dict(metadata or {}), tags=list(tags), include_tests=True)
    with warnings.catch_warnings():
        # empty-slice means and pandas downcasting notices from inside Evidently's legacy metrics
        from sklearn.exceptions import UndefinedMetricWarning

        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # undefined precision: we report None
        return report.run(current, reference, additional_data=additional, timestamp=timestamp, name=name)


# ---------------------------------------------------------------- judgment drift


def judgment_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    drift_share: float = 0.5,
    psi_threshold: float = 0.2,
    ks_threshold: float = 0.01,
    timestamp: datetime | None = None,
    tags: Sequence[str] = (),
    metadata: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Data drift of the judgment columns + the score's PSI and K-S p-value.

    User-level columns (profile length, category entropy) are compared once per user (`drift_frame`).

    Returns (snapshot, {"columns": [...], "drifted_columns": n, "drift_share": s, "score_psi": v,
    "score_ks_pvalue": p}); per column: Evidently's chosen test, its score and threshold, whether it
    flagged drift, and the reference/current means (for judged_serendipitous: the share judged).
    """
    check_version()
    from evidently import DataDefinition, Dataset
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    cols = list(DRIFT_COLUMNS)
    definition = DataDefinition(
        numerical_columns=list(NUMERICAL_COLUMNS), categorical_columns=list(CATEGORICAL_COLUMNS)
    )
    cur_df, ref_df = drift_frame(current), drift_frame(reference)
    cur = Dataset.from_pandas(cur_df, data_definition=definition)
    ref = Dataset.from_pandas(ref_df, data_definition=definition)
    snapshot = _run(
        [
            DataDriftPreset(columns=cols, drift_share=drift_share),
            ValueDrift(column="score", method="psi", threshold=psi_threshold),
            ValueDrift(column="score", method="ks", threshold=ks_threshold),
        ],
        cur,
        ref,
        name="judgment drift",
        timestamp=timestamp,
        tags=tags,
        metadata=metadata,
    )
    status = _test_status(snapshot)
    count = _find(snapshot, "DriftedColumnsCount")
    psi = _find(snapshot, "ValueDrift", column="score", method="psi", threshold=psi_threshold)
    ks = _find(snapshot, "ValueDrift", column="score", method="ks", threshold=ks_threshold)
    gate_ids = {m["id"] for m in (psi, ks) if m is not None}
    columns = []
    for m in _metrics(snapshot):
        cfg = m["config"]
        if cfg.get("type", "").rsplit(":", 1)[-1] != "ValueDrift" or m["id"] in gate_ids:
            continue
        col = cfg["column"]
        columns.append(
            {
                "column": col,
                "method": cfg.get("method"),
                "score": _num(m["value"]),
                "threshold": _num(cfg.get("threshold")),
                "drifted": status.get(m["id"]) == "FAIL",
                "reference_mean": _num(ref_df[col].mean()),
                "current_mean": _num(cur_df[col].mean()),
            }
        )
    columns.sort(key=lambda c: cols.index(c["column"]))
    if psi is None or ks is None or count is None or len(columns) != len(cols):
        raise RuntimeError(f"Evidently {EVIDENTLY_VERSION} returned an unexpected drift snapshot")
    return snapshot, {
        "columns": columns,
        "drifted_columns": int(count["value"]["count"]),
        "drift_share": _num(count["value"]["share"]),
        "score_psi": _num(psi["value"]),
        "score_ks_pvalue": _num(ks["value"]),
    }


# ---------------------------------------------------------------- judgment quality vs feedback


def judgment_quality(
    current: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    *,
    timestamp: datetime | None = None,
    tags: Sequence[str] = (),
    metadata: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, dict[str, float | None]]]:
    """Precision/recall of judged_serendipitous against `feedback` (rows with known feedback only).

    Returns (snapshot, {"current": {"precision", "recall", "rows"}, "reference": {...} or absent}).
    """
    check_version()
    from evidently import BinaryClassification, DataDefinition, Dataset
    from evidently.metrics import Precision, Recall

    cols = ["judged_serendipitous", FEEDBACK]
    definition = DataDefinition(
        classification=[BinaryClassification(target=FEEDBACK, prediction_labels="judged_serendipitous", pos_label=1)],
        categorical_columns=cols,
    )

    def prep(df: pd.DataFrame) -> Any:
        known = df.loc[df[FEEDBACK].notna(), cols].astype("int64").reset_index(drop=True)
        return Dataset.from_pandas(known, data_definition=definition)

    snapshot = _run(
        [Precision(), Recall()],
        prep(current),
        prep(reference) if reference is not None else None,
        name="judgment quality",
        timestamp=timestamp,
        tags=tags,
        metadata=metadata,
    )
    out: dict[str, dict[str, float | None]] = {}
    for side, df in (("current", current), ("reference", reference)):
        if df is None:
            continue
        known = df[df[FEEDBACK].notna()]
        predicted = int((known["judged_serendipitous"] == 1).sum())
        actual = int((known[FEEDBACK] == 1).sum())
        values: dict[str, float | None] = {"rows": len(known), "predicted_positive": predicted, "positive": actual}
        for metric, key, defined in (("Precision", "precision", predicted > 0), ("Recall", "recall", actual > 0)):
            m = _find(snapshot, metric)
            # sklearn calls an empty denominator 0 (or 1 with a single label): undefined is None here
            values[key] = _side_value(snapshot, m, side) if (m is not None and defined) else None
        out[side] = values
    return snapshot, out


def _side_value(snapshot: Any, metric: dict[str, Any], side: str) -> float | None:
    """A single-value metric's current value, or its reference value (kept beside it in the run context)."""
    if side == "current":
        return _num(metric["value"])
    try:
        return _num(snapshot.context.get_reference_metric_result(metric["id"]).to_dict()["value"])
    except Exception:  # ReferenceMetricNotFound: no reference data in this run
        return None


# ---------------------------------------------------------------- recommender quality


RECSYS_METRICS = ("novelty", "diversity", "serendipity", "personalization", "popularity_arp", "coverage", "gini")


def recsys_quality(
    current: pd.DataFrame,
    reference: pd.DataFrame | None,
    current_train: pd.DataFrame,
    reference_train: pd.DataFrame | None,
    item_features: Sequence[str],
    k: int,
    *,
    timestamp: datetime | None = None,
    tags: Sequence[str] = (),
    metadata: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, dict[str, float | None]]]:
    """Evidently's beyond-accuracy recsys metrics on ranked lists.

    `current`/`reference`: user_id, item_id, prediction (a score; higher ranks first), target
    (relevance, >0 = relevant) and the item feature columns; `*_train`: user_id, item_id and the same
    features (the interactions that define popularity and each user's history).
    """
    check_version()
    from evidently import DataDefinition, Dataset, Recsys
    from evidently.metrics import Diversity, Novelty, Personalization, PopularityBiasMetric, Serendipity

    feats = list(item_features)
    ranking = Recsys(user_id="user_id", item_id="item_id", target="target", prediction="prediction")
    definition = DataDefinition(ranking=[ranking], numerical_columns=["prediction", "target", *feats])
    train_def = DataDefinition(numerical_columns=feats)

    def ds(df: pd.DataFrame | None, d: Any) -> Any:
        return None if df is None else Dataset.from_pandas(df.reset_index(drop=True), data_definition=d)

    additional = {"current_train_data": ds(current_train, train_def)}
    if reference is not None and reference_train is not None:
        additional["reference_train_data"] = ds(reference_train, train_def)
    metrics = [
        Novelty(k=k),
        Diversity(k=k, item_features=feats),
        Serendipity(k=k, item_features=feats),
        Personalization(k=k),
        PopularityBiasMetric(k=k, metric="arp"),
        PopularityBiasMetric(k=k, metric="coverage"),
        PopularityBiasMetric(k=k, metric="gini"),
    ]
    snapshot = _run(
        metrics,
        ds(current, definition),
        ds(reference, definition),
        name="recommender quality",
        timestamp=timestamp,
        tags=tags,
        metadata=metadata,
        additional=additional,
    )
    sides = ["current"] + (["reference"] if reference is not None else [])
    found = {
        "novelty": _find(snapshot, "Novelty"),
        "diversity": _find(snapshot, "Diversity"),
        "serendipity": _find(snapshot, "Serendipity"),
        "personalization": _find(snapshot, "Personalization"),
        "popularity_arp": _find(snapshot, "PopularityBiasMetric", metric="arp"),
        "coverage": _find(snapshot, "PopularityBiasMetric", metric="coverage"),
        "gini": _find(snapshot, "PopularityBiasMetric", metric="gini"),
    }
    out = {side: {key: (_side_value(snapshot, m, side) if m else None) for key, m in found.items()} for side in sides}
    return snapshot, out


# ---------------------------------------------------------------- persistence


def save(snapshot: Any, html_path: str | Path, json_path: str | Path) -> tuple[Path, Path]:
    """The standalone HTML report and the snapshot's metrics + tests as JSON, each written atomically."""
    with atomic_path(html_path) as tmp:
        snapshot.save_html(str(tmp))
    with atomic_path(json_path) as tmp:
        snapshot.save_json(str(tmp))
    return Path(html_path), Path(json_path)


def add_to_workspace(
    workspace: str | Path, snapshots: Sequence[tuple[str, Any]], project: str = WORKSPACE_PROJECT
) -> dict[str, Any]:
    """Store snapshots in a local Evidently workspace (browse with `evidently ui --workspace DIR`)."""
    check_version()
    from evidently.ui.workspace import Workspace

    Path(workspace).mkdir(parents=True, exist_ok=True)
    ws = Workspace(str(workspace))
    found = ws.search_project(project)
    proj = (
        found[0]
        if found
        else ws.create_project(
            project, description="seren: SerenGPT judgment drift, judgment quality, recommender quality"
        )
    )
    refs = {name: str(ws.add_run(proj.id, snap, name=name).id) for name, snap in snapshots}
    return {"path": str(Path(workspace).resolve()), "project": project, "project_id": str(proj.id), "snapshots": refs}
