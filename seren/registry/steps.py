"""The library side of the export -> validate -> register -> deploy pipeline steps.

Each function takes and returns plain paths and dicts (what a KFP component body hands over), so
the components stay a few lines and everything here is testable without KFP.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from seren.errors import DataError
from seren.io import write_json, write_parquet

ONNX_NAME, PLAN_NAME, EXPORT_INFO = "model.onnx", "model.plan", "export.json"


def export_step(
    model_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    opset: int = 17,
    tensorrt: bool = True,
    fp16: bool = True,
) -> dict[str, Any]:
    """model_dir -> out_dir/model.onnx (+ model.plan when a GPU built one) + export.json; returns metrics.

    The TensorRT attempt is reported as it happened: "built", or "skipped: no GPU" (never faked).
    """
    from serving.export import build_tensorrt, export_onnx, graph_calibration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    onnx = export_onnx(model_dir, out / ONNX_NAME, opset=opset)
    graph = graph_calibration(onnx)  # the card's map is folded into the graph: it serves calibrated scores
    stats: dict[str, Any] = {
        "onnx_export_s": round(time.perf_counter() - t0, 2),
        "onnx_bytes": onnx.stat().st_size,
        "opset": opset,
        "calibrated": 1.0 if graph["calibrated"] else 0.0,
    }
    if tensorrt:
        trt = build_tensorrt(onnx, out / PLAN_NAME, fp16=fp16)
    else:
        trt = {"status": "skipped: disabled"}
    stats["tensorrt_status"] = trt["status"]
    stats["tensorrt_built"] = 1.0 if trt["status"] == "built" else 0.0
    if "build_s" in trt:
        stats["tensorrt_build_s"] = trt["build_s"]
    write_json(out / EXPORT_INFO, {"model_dir": str(model_dir), **stats, "calibration": graph, "tensorrt": trt})
    return stats


def validate_step(
    model_dir: str | os.PathLike[str],
    onnx_dir: str | os.PathLike[str],
    training_data_dir: str | os.PathLike[str],
    report_path: str | os.PathLike[str],
    max_rows: int = 128,
    max_abs_diff: float = 1e-3,
    auc_delta: float = 0.005,
    seed: int = 0,
    dataset_dir: str | os.PathLike[str] | None = None,
    judgments_path: str | os.PathLike[str] | None = None,
    publish_reference: bool = True,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Gate the export against the torch scorer on the held-out candidates; (report, flat metrics).

    With a dataset, the exported graph's judgments on the sample are written to `judgments_path`
    (register stores them in the version: monitoring with an environment compares against the
    deployed version's) and, when every gate passed and `publish_reference`, also to the local
    default reference (monitoring.judgments.default_reference_path, used when drift is given no
    environment and no path). A model that failed validation never becomes a reference.
    """
    import tempfile

    from seren.serengpt.labeling import TrainingData
    from serving.validate import report_metrics, validate

    onnx_dir = Path(onnx_dir)
    onnx = onnx_dir / ONNX_NAME if onnx_dir.is_dir() else onnx_dir
    plan = onnx_dir / PLAN_NAME if onnx_dir.is_dir() else None
    eval_df = TrainingData.load(training_data_dir).eval_candidates
    if eval_df.empty:
        raise DataError(f"{training_data_dir} has no held-out eval candidates", "label more users before validating")
    gates = {"onnx_max_abs_diff": max_abs_diff, "onnx_auc_delta": auc_delta, "tensorrt_auc_delta": auc_delta}
    with tempfile.TemporaryDirectory() as tmp:
        scores_path = Path(tmp) / "scores.parquet"
        report = validate(
            model_dir,
            onnx,
            eval_df,
            gates,
            engine_path=plan if plan is not None and plan.is_file() else None,
            max_rows=max_rows,
            seed=seed,
            out_path=report_path,
            scores_out=scores_path if dataset_dir else None,
        )
        if dataset_dir:
            import pandas as pd

            calibrated = bool(report["calibration"]["graph_calibrated"])  # the graph applied the map already
            ref = reference_judgments(pd.read_parquet(scores_path), dataset_dir, model_dir, calibrated=calibrated)
            if judgments_path is not None:
                write_parquet(Path(judgments_path), ref)
            if report["passed"] and publish_reference:
                from monitoring.judgments import write_reference

                report["reference_judgments"] = str(write_reference(ref))
                write_json(Path(report_path), report)
    return report, report_metrics(report)


def reference_judgments(
    scores: Any,
    dataset_dir: str | os.PathLike[str],
    model_dir: str | os.PathLike[str],
    threshold: float | None = None,
    calibrated: bool = False,
) -> Any:
    """Judgment rows (monitoring.judgments schema) for validation-time scores: profile length in the
    model's tokens, the user's category entropy and the item's popularity from the dataset.

    calibrated: the scores come from a graph that folds the card's map in (validation report's
    calibration.graph_calibrated); otherwise they are raw P(Yes) and the map is applied here.
    threshold: judged_serendipitous = score >= it (default: the card's decision threshold, like nearline)."""
    from transformers import AutoTokenizer

    from monitoring.judgments import build_judgments
    from seren.data import load_dataset
    from seren.profiles import build_profiles

    ds = load_dataset(dataset_dir)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    users = sorted(scores["user_id"].astype(str).unique())
    prof = build_profiles(ds, tok, users=users)[["user_id", "category_entropy"]]
    tokens = scores.drop_duplicates("user_id")[["user_id", "profile_text"]].assign(
        profile_tokens=lambda d: [len(tok(t, add_special_tokens=False)["input_ids"]) for t in d["profile_text"]]
    )
    prof = prof.merge(tokens[["user_id", "profile_tokens"]], on="user_id", how="inner")
    pop = ds.items[["item_id", "popularity"]]
    cols = ["user_id", "item_id", "score", *(["label"] if "label" in scores.columns else [])]
    from seren.llm.calibration import apply_calibration, decision_threshold, load_calibration

    # the reference holds calibrated probabilities, like nearline's judgments (issue 12): exactly once
    cal = load_calibration(model_dir)
    if not calibrated:
        scores = scores.assign(score=apply_calibration(cal, scores["score"].to_numpy()))
    thr = decision_threshold(cal) if threshold is None else threshold
    return build_judgments(scores[cols], prof, pop, threshold=thr)


def register_step(
    model_dir: str | os.PathLike[str],
    onnx_dir: str | os.PathLike[str],
    validation_report: str | os.PathLike[str],
    evaluation: str | os.PathLike[str] | None,
    evaluation_report: str | os.PathLike[str] | None,
    out_path: str | os.PathLike[str],
    registry: str = "",
    model: str = "serengpt",
    environments: str = "",
    metadata: dict[str, Any] | None = None,
    reference_judgments: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Register the merged model + its export + reports; writes the manifest to out_path and returns it.

    reference_judgments: the validate step's judgments (its `judgments` output; skipped when that
    step had no dataset and wrote none): they travel with the version, so monitoring resolves the
    reference of the version an environment serves (seren.registry.registry.resolve_reference)."""
    from seren.registry.config import load_environments, registry_uri
    from seren.registry.registry import Registry

    uri = registry_uri(registry or None, load_environments(environments or None))
    reg = Registry(uri)
    ev_md = Path(evaluation_report) if evaluation_report else None
    ref = Path(reference_judgments) if reference_judgments else None
    man = reg.register(
        model,
        model_dir=model_dir,
        onnx=onnx_dir,
        validation=validation_report,
        evaluation=evaluation,
        evaluation_report=ev_md if ev_md is not None and ev_md.is_file() else None,
        metadata=metadata,
        reference_judgments=ref if ref is not None and ref.is_file() else None,
    )
    write_json(out_path, {**man, "registry": reg.uri})
    return {**man, "registry": reg.uri}


def deploy_step(
    version: int,
    out_path: str | os.PathLike[str],
    env: str = "dev",
    registry: str = "",
    model: str = "serengpt",
    environments: str = "",
) -> dict[str, Any]:
    """Promote into `env` (dev in the training pipeline); writes the outcome (also a refusal) to out_path."""
    from seren.registry.promotion import deploy

    res = deploy(model, version, env, registry=registry or None, environments=environments or None)
    write_json(out_path, res)
    return res


def deploy_metrics(res: dict[str, Any]) -> dict[str, Any]:
    """Scalars of a deploy outcome for a Metrics artifact (verification says how it was checked)."""
    dep = res.get("deployment", {})
    out: dict[str, Any] = {
        "deployed": 1.0 if res.get("deployed") else 0.0,
        "version": float(res.get("version") or 0),
        "result": res.get("result", ""),
    }
    if res.get("triton_version") is not None:
        out["triton_version"] = float(res["triton_version"])
    if "verification" in dep:
        out["verification"] = dep["verification"]
    if "smoke" in dep:
        out["smoke_max_abs_diff"] = float(dep["smoke"]["max_abs_diff"])
    if "deploy_s" in dep:
        out["deploy_s"] = float(dep["deploy_s"])
    return out
