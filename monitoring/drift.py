"""One monitoring run: reference vs current judgments -> Evidently reports -> gates -> pass / fail / no_data.

Reference = the judgments recorded at validation time: with an environment, those registered with
the version deployed there (seren.registry.registry.resolve_reference), else an explicit path,
else the local default file the last passing validation wrote; current = the nearline judgments inside
the time window (end - window, end]. With a dataset (its interactions), judgments get feedback
(a later positive engagement with the judged item) and the run adds judgment quality
(precision/recall of "serendipitous") and recommender quality (Evidently's recsys metrics on
each user's judged slate). Everything a run writes goes into reports/<run id>/ atomically; the
reports index and the Evidently workspace are updated after.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from monitoring import reports as R
from monitoring.gates import Gates, evaluate
from monitoring.judgments import (
    FEEDBACK,
    attach_feedback,
    default_current_dir,
    default_reference_path,
    in_window,
    load_judgments,
    parse_end,
    parse_window,
    validate_judgments,
)
from seren.errors import ConfigError, DataError
from seren.io import atomic_dir, write_json, write_text

JudgmentsSource = str | os.PathLike[str] | pd.DataFrame | None


def _judgments(src: JudgmentsSource, default: Path, source: str) -> tuple[pd.DataFrame, str]:
    if isinstance(src, pd.DataFrame):
        return validate_judgments(src, source), f"<{source} dataframe>"
    path = Path(src) if src not in (None, "") else default
    return load_judgments(path, source), str(path.resolve())


def _known(df: pd.DataFrame) -> int:
    return int(df[FEEDBACK].notna().sum()) if FEEDBACK in df.columns else 0


def run_drift(
    reference: JudgmentsSource = None,
    current: JudgmentsSource = None,
    *,
    window: str | None = "1d",
    end: str | datetime | None = None,
    dataset: str | os.PathLike[str] | None = None,
    gates: Gates | dict[str, Any] | None = None,
    reports_dir: str | os.PathLike[str] | None = None,
    workspace: str | os.PathLike[str] | None | bool = None,
    k: int = 10,
    feedback_horizon: str | None = "7d",
    run_id: str | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    """Run the monitoring reports and gates once; returns the run summary (also written as summary.json).

    reference/current: a judgments file or directory (or a DataFrame); defaults are
    `default_reference_path()` and `default_current_dir()`. environment: take the reference from
    the registry version deployed there (not with `reference`); the summary's
    sources.reference_from records which was used (registry version, path or default path). window: "1d", "12h", ... or "all".
    end: "now" (default), "latest" (newest current judgment) or an ISO time. workspace: a directory
    (default seren_home()/evidently_workspace) or False to skip it. Status "no_data" when the window
    holds no judgments; "fail" when any gate fails (then `drifted` is True).
    """
    g = gates if isinstance(gates, Gates) else Gates.from_dict(gates)
    if k < 1:
        raise ConfigError(f"k={k} must be >= 1", "pass --k 10 (the slate length to evaluate)")
    length = parse_window(window)
    horizon = parse_window(feedback_horizon) if feedback_horizon else None
    ref_from: dict[str, Any]
    if environment:
        if isinstance(reference, pd.DataFrame) or reference not in (None, ""):
            raise ConfigError(
                f"both a reference and environment {environment!r} given",
                "pass --reference PATH or --environment ENV (the deployed version's reference), not both",
            )
        from seren.registry.registry import resolve_reference

        ref_from = resolve_reference(environment)
        reference = ref_from["path"]
    elif isinstance(reference, pd.DataFrame):
        ref_from = {"source": "dataframe"}
    else:
        ref_from = {"source": "path" if reference not in (None, "") else "default path"}
    ref, ref_src = _judgments(reference, default_reference_path(), "reference")
    ref_from.setdefault("path", ref_src)
    cur_all, cur_src = _judgments(current, default_current_dir(), "current")
    if ref.empty:
        raise DataError(
            f"reference judgments at {ref_src} have no rows",
            "record the validated model's judgments with monitoring.judgments.write_reference",
        )
    stop = parse_end(end, cur_all)
    cur = in_window(cur_all, length, stop)

    ds = None
    if dataset not in (None, ""):
        from seren.data import load_dataset

        ds = load_dataset(dataset)
        ref = attach_feedback(ref, ds.interactions, horizon)
        cur = attach_feedback(cur, ds.interactions, horizon)

    now = datetime.now(UTC)
    rid = run_id or now.strftime("%Y%m%dT%H%M%S-%fZ")
    out_root = Path(reports_dir) if reports_dir not in (None, "") else R.default_reports_dir()
    summary: dict[str, Any] = {
        "run_id": rid,
        "created": now.isoformat(),
        "status": "no_data",
        "drifted": False,
        "message": None,
        "sources": {
            "reference": ref_src,
            "reference_from": ref_from,
            "current": cur_src,
            "dataset": str(dataset) if ds is not None else None,
        },
        "window": {
            "length": window or "all",
            "start": (stop - length).isoformat() if length is not None else None,
            "end": stop.isoformat(),
        },
        "rows": {"reference": len(ref), "current": len(cur), "current_all": len(cur_all)},
        "thresholds": g.model_dump(),
        "columns": [],
        "drift_share": None,
        "score_psi": None,
        "score_ks_pvalue": None,
        "quality": None,
        "recsys": None,
        "recsys_k": k,
        "gates": [],
        "files": {},
        "workspace": None,
        "reports_dir": str((out_root / rid).resolve()),
    }
    snapshots: list[tuple[str, Any]] = []
    with atomic_dir(out_root / rid, marker=False) as tmp:  # a new run dir; listing stays the two reports
        if cur.empty:
            summary["message"] = (
                f"no data in window: no current judgments in ({summary['window']['start'] or 'beginning'}, "
                f"{summary['window']['end']}] ({len(cur_all)} outside it)"
            )
        else:
            snapshots = _evaluate(summary, ref, cur, ds, g, k, tmp, now)
        write_json(tmp / R.SUMMARY, summary)
        write_text(tmp / R.RUN_PAGE, R.render_run(summary))
    if snapshots and workspace is not False:
        from monitoring import evidently_api as ev

        ws_dir = Path(workspace) if workspace not in (None, "", True) else R.default_workspace()
        summary["workspace"] = ev.add_to_workspace(ws_dir, [(f"{name} {rid}", snap) for name, snap in snapshots])
        write_json(out_root / rid / R.SUMMARY, summary)
        write_text(out_root / rid / R.RUN_PAGE, R.render_run(summary))
    summary["index"] = str(R.write_index(out_root).resolve())
    return summary


def _evaluate(
    summary: dict[str, Any],
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    ds: Any,
    g: Gates,
    k: int,
    out: Path,
    now: datetime,
) -> list[tuple[str, Any]]:
    """Evidently reports into `out`, results and gates into `summary`; returns the snapshots."""
    from monitoring import evidently_api as ev

    tags = ["seren", "judgments", f"run:{summary['run_id']}"]
    meta = {"run_id": summary["run_id"], "window_end": summary["window"]["end"], "window": summary["window"]["length"]}
    snapshots: list[tuple[str, Any]] = []

    def keep(name: str, snapshot: Any) -> None:
        ev.save(snapshot, out / f"{name}.html", out / f"{name}.json")
        summary["files"][name] = {"html": f"{name}.html", "json": f"{name}.json"}
        snapshots.append((name, snapshot))

    snap, drift = ev.judgment_drift(
        ref,
        cur,
        drift_share=g.max_drift_share,
        psi_threshold=g.max_score_psi,
        ks_threshold=g.min_score_ks_pvalue,
        timestamp=now,
        tags=tags,
        metadata=meta,
    )
    keep("judgment_drift", snap)
    summary.update(drift)

    precision: dict[str, float | None] = {"reference": None, "current": None}
    if _known(cur) >= g.min_feedback_rows:
        ref_q = ref if _known(ref) >= g.min_feedback_rows else None
        snap, quality = ev.judgment_quality(cur, ref_q, timestamp=now, tags=tags, metadata=meta)
        keep("judgment_quality", snap)
        summary["quality"] = quality
        precision = {side: quality.get(side, {}).get("precision") for side in ("reference", "current")}

    if ds is not None:
        from monitoring.recsys import full_slates, item_feature_table, ranked_lists, slate_length, training_frame

        features, cols = item_feature_table(ds.items)
        ranked_cur, ranked_ref = ranked_lists(cur, features), ranked_lists(ref, features)
        k_eff = slate_length([ranked_cur, ranked_ref], k)
        recs_cur, recs_ref = full_slates(ranked_cur, k_eff), full_slates(ranked_ref, k_eff)
        train_cur = training_frame(ds.interactions, features, cur["event_timestamp"].min())
        train_ref = training_frame(ds.interactions, features, ref["event_timestamp"].min())
        summary["recsys_k"] = k_eff
        if not recs_cur.empty and not train_cur.empty:
            use_ref = not recs_ref.empty and not train_ref.empty
            snap, rec = ev.recsys_quality(
                recs_cur,
                recs_ref if use_ref else None,
                train_cur,
                train_ref if use_ref else None,
                cols,
                k_eff,
                timestamp=now,
                tags=tags,
                metadata=meta,
            )
            keep("recommender_quality", snap)
            for side, frame, ranked in (("current", recs_cur, ranked_cur), ("reference", recs_ref, ranked_ref)):
                if side in rec:
                    rec[side]["users"] = int(frame["user_id"].nunique())
                    rec[side]["users_short_slate"] = int(ranked["user_id"].nunique() - frame["user_id"].nunique())
            summary["recsys"] = rec

    rows = evaluate(g, drift["drift_share"], drift["score_psi"], drift["score_ks_pvalue"], precision)
    summary["gates"] = rows
    failed = [r["name"] for r in rows if not r["passed"]]
    summary["status"] = "fail" if failed else "pass"
    summary["drifted"] = bool(failed)
    summary["message"] = f"gates failed: {', '.join(failed)}" if failed else "all gates passed"
    return snapshots
