"""Gate an exported scorer against the torch scorer before it may be registered.

Parity on a held-out sample (max |p_onnx - p_torch| for fp32 ONNX), ranking quality kept (ROC-AUC
change against the labels, also for an FP16 TensorRT engine when one is given and a GPU is
here), plus latency/throughput of each runtime. The report says pass/fail per gate and overall;
a gate that cannot be evaluated (no labels, no GPU) is reported as skipped, never as passed data.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren.errors import DataError
from seren.io import write_json, write_parquet

DEFAULT_GATES: dict[str, float] = {
    "onnx_max_abs_diff": 1e-3,
    "onnx_auc_delta": 0.005,
    "tensorrt_auc_delta": 0.005,
}


def _auc(labels: np.ndarray | None, scores: np.ndarray) -> float | None:
    if labels is None or len(np.unique(labels)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _gate(value: float | None, threshold: float, skipped: str | None = None) -> dict:
    if value is None:
        return {
            "value": None,
            "threshold": threshold,
            "passed": None,
            "status": f"skipped: {skipped or 'not measurable'}",
        }
    ok = bool(value <= threshold)
    return {"value": float(value), "threshold": threshold, "passed": ok, "status": "pass" if ok else "fail"}


def _batched(fn: Any, ids: np.ndarray, mask: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate(
        [fn(ids[s : s + batch_size], mask[s : s + batch_size]) for s in range(0, len(ids), batch_size)]
    )


def _timings(fn: Any, singles: list[tuple[np.ndarray, np.ndarray]], batch: tuple[np.ndarray, np.ndarray]) -> dict:
    """Per-request latency (batch 1) and batched throughput of one runtime."""
    fn(*singles[0])  # warm-up (lazy init, allocator)
    lat = []
    for ids, mask in singles:
        t0 = time.perf_counter()
        fn(ids, mask)
        lat.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    fn(*batch)
    dt = time.perf_counter() - t0
    return {
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 3),
        "latency_ms_p99": round(float(np.percentile(lat, 99)), 3),
        "batch_size": int(len(batch[0])),
        "items_per_s": round(len(batch[0]) / dt, 2),
    }


def validate(
    model_dir: str | os.PathLike[str],
    onnx_path: str | os.PathLike[str],
    eval_df: pd.DataFrame,
    gates: dict[str, float] | None = None,
    *,
    engine_path: str | os.PathLike[str] | None = None,
    max_rows: int = 256,
    batch_size: int = 16,
    latency_rows: int = 16,
    seed: int = 0,
    out_path: str | os.PathLike[str] | None = None,
    scores_out: str | os.PathLike[str] | None = None,
) -> dict:
    """Compare the exported graph(s) with the torch scorer on (a sample of) eval_df; return the report.

    eval_df needs profile_text and item_text; a 0/1 `label` column enables the AUC gates.
    scores_out: also write the per-row scores (eval_df's columns + score_torch, score) as parquet, so
    the exported graph's judgments on this sample can become monitoring's reference.
    """
    import torch

    from seren.llm.scorer import SerenScorer
    from serving.export import cuda_device_count, tensorrt_runner
    from serving.triton_models.scorer.model import OnnxScorer

    gates = {**DEFAULT_GATES, **(gates or {})}
    missing = {"profile_text", "item_text"} - set(eval_df.columns)
    if missing:
        raise DataError(
            f"validation data lacks columns {sorted(missing)}",
            "pass eval candidates with profile_text, item_text (and label)",
        )
    df = eval_df.dropna(subset=["profile_text", "item_text"])
    if df.empty:
        raise DataError("validation data has no rows", "pass a non-empty held-out sample")
    if len(df) > max_rows:
        df = df.sample(n=max_rows, random_state=seed)
    profiles, items = df["profile_text"].astype(str).tolist(), df["item_text"].astype(str).tolist()
    labels = df["label"].astype(int).to_numpy() if "label" in df.columns else None

    scorer = SerenScorer.from_pretrained(model_dir)
    ids_t, mask_t = scorer.encode(profiles, items)
    ids, mask = ids_t.numpy(), mask_t.numpy()
    p_torch = scorer.score(profiles, items, batch_size=batch_size)
    onnx = OnnxScorer(onnx_path)
    p_onnx = _batched(onnx, ids, mask, batch_size)

    auc_torch, auc_onnx = _auc(labels, p_torch), _auc(labels, p_onnx)
    if scores_out is not None:
        write_parquet(Path(scores_out), df.assign(score_torch=p_torch, score=p_onnx).reset_index(drop=True))
    no_auc = "labels missing or single-class" if auc_torch is None else None
    report: dict[str, Any] = {
        "n": len(df),
        "model_dir": str(model_dir),
        "onnx_path": str(onnx_path),
        "torch": {"auc": auc_torch, "mean_score": float(p_torch.mean())},
        "onnx": {
            "auc": auc_onnx,
            "max_abs_diff": float(np.abs(p_onnx - p_torch).max()),
            "mean_abs_diff": float(np.abs(p_onnx - p_torch).mean()),
        },
        "gates": {
            "onnx_max_abs_diff": _gate(float(np.abs(p_onnx - p_torch).max()), gates["onnx_max_abs_diff"]),
            "onnx_auc_delta": _gate(None if no_auc else abs(auc_onnx - auc_torch), gates["onnx_auc_delta"], no_auc),  # type: ignore[operator]
        },
    }

    # Latency/throughput: torch eager per request (the ScoringHead, as exported) vs ONNX Runtime.
    k = min(latency_rows, len(df))
    singles = [scorer.encode(profiles[i], items[i]) for i in range(k)]
    b = min(batch_size, len(df))
    with torch.inference_mode():
        report["torch"].update(_timings(lambda a, m: scorer.head(a, m), singles, (ids_t[:b], mask_t[:b])))
    report["onnx"].update(_timings(onnx, [(a.numpy(), m.numpy()) for a, m in singles], (ids[:b], mask[:b])))

    if engine_path is None:
        report["tensorrt"] = {"status": "skipped: no engine given"}
        report["gates"]["tensorrt_auc_delta"] = _gate(None, gates["tensorrt_auc_delta"], "no TensorRT engine")
    elif cuda_device_count() == 0:
        report["tensorrt"] = {"status": "skipped: no GPU"}
        report["gates"]["tensorrt_auc_delta"] = _gate(None, gates["tensorrt_auc_delta"], "no GPU")
    else:
        with tensorrt_runner(engine_path) as runner:

            def trt(a: np.ndarray, m: np.ndarray) -> np.ndarray:
                return np.asarray(
                    runner.infer({"input_ids": a, "attention_mask": m})["score"], dtype=np.float32
                ).reshape(-1)

            p_trt = _batched(trt, ids, mask, batch_size)
            auc_trt = _auc(labels, p_trt)
            report["tensorrt"] = {
                "status": "measured",
                "auc": auc_trt,
                "max_abs_diff": float(np.abs(p_trt - p_torch).max()),
            }
            report["tensorrt"].update(_timings(trt, [(a.numpy(), m.numpy()) for a, m in singles], (ids[:b], mask[:b])))
            report["gates"]["tensorrt_auc_delta"] = _gate(
                None if no_auc else abs(auc_trt - auc_torch), gates["tensorrt_auc_delta"], no_auc
            )  # type: ignore[operator]

    report["passed"] = all(g["passed"] is not False for g in report["gates"].values())
    report["machine"] = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if out_path is not None:
        write_json(Path(out_path), report)
    return report


def report_metrics(report: dict) -> dict[str, float]:
    """Flat numeric metrics of a report (for a KFP Metrics artifact); skipped gates are left out."""
    out: dict[str, float] = {"passed": float(bool(report["passed"])), "n": float(report["n"])}
    for name, g in report["gates"].items():
        if g["value"] is not None:
            out[name] = float(g["value"])
            out[f"{name}_passed"] = float(bool(g["passed"]))
    for rt in ("torch", "onnx", "tensorrt"):
        for key, val in report.get(rt, {}).items():
            if isinstance(val, int | float) and not isinstance(val, bool):
                out[f"{rt}_{key}"] = float(val)
    return out
