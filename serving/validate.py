"""Gate an exported scorer against the torch scorer before it may be registered.

Parity on a held-out sample (max |p_onnx - p_torch| for fp32 ONNX), ranking quality kept (ROC-AUC
change against the labels, also for an FP16 TensorRT engine when one is given and a GPU is
here), plus latency/throughput of each runtime. When the export holds the packed multi-candidate
graph (`packed.onnx` beside the per-pair one), it gets the same parity gate (each user's sampled
candidates packed as the Triton packer does) and its own throughput, and so does its TensorRT plan. The report says pass/fail per gate and overall;
a gate that cannot be evaluated (no labels, no GPU) is reported as skipped, never as passed data.

A graph that folds the calibration map in (metadata "seren.calibrated") is compared with the
*calibrated* in-process score (the model card's map applied to the torch scorer's P(Yes)), so a graph
carrying another map than the card fails the parity gate; an older graph without the flag is
compared with the raw score, as before. The report's "calibration" section says which.
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
from seren.metrics import flatten_metrics

DEFAULT_GATES: dict[str, float] = {
    "onnx_max_abs_diff": 1e-3,
    "onnx_packed_max_abs_diff": 1e-3,
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


def _packed_scores(fn: Any, packs: list, pad: int, n: int) -> tuple[np.ndarray, float]:
    """Scores of every candidate of `packs` (one pack per call, as a user's request), and the seconds."""
    from seren.llm.packed import to_arrays

    out = np.empty(n, dtype=np.float32)
    t0 = time.perf_counter()
    for p in packs:
        out[p.candidates] = np.asarray(fn(*to_arrays([p], pad))).reshape(-1)[: len(p.candidates)]
    return out, time.perf_counter() - t0


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

    from seren.llm.calibration import apply_calibration, describe, fingerprint, load_calibration
    from seren.llm.scorer import SerenScorer
    from serving.export import PACKED_PLAN, cuda_device_count, graph_calibration, packed_sibling, tensorrt_runner
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
    raw_torch = scorer.score(profiles, items, batch_size=batch_size)
    card_cal = load_calibration(model_dir)
    graph = graph_calibration(onnx_path)
    # the in-process reference is what the graph claims to output: calibrated when the map is folded in
    p_torch = apply_calibration(card_cal if graph["calibrated"] else None, raw_torch)
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
        "calibration": {
            "card": describe(card_cal),
            "card_sha": fingerprint(card_cal),
            "graph_calibrated": graph["calibrated"],
            "graph_sha": graph["calibration_sha"],
            "reference": "calibrated in-process score" if graph["calibrated"] else "raw in-process P(Yes)",
        },
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

    packed_onnx = packed_sibling(onnx_path)
    if packed_onnx is not None:
        from serving.triton_models.packed_scorer.model import OnnxPackedScorer

        packs = scorer.pack(profiles, items)
        pad = int(scorer.tokenizer.pad_token_id)
        ort_packed = OnnxPackedScorer(packed_onnx)
        p_packed, dt = _packed_scores(ort_packed, packs, pad, len(profiles))
        packed_calibrated = graph_calibration(packed_onnx)["calibrated"]
        report["calibration"]["packed_graph_calibrated"] = packed_calibrated
        ref_packed = apply_calibration(card_cal if packed_calibrated else None, raw_torch)
        diff = np.abs(p_packed - ref_packed)
        report["onnx_packed"] = {
            "path": str(packed_onnx),
            "packs": len(packs),
            "auc": _auc(labels, p_packed),
            "max_abs_diff": float(diff.max()),
            "mean_abs_diff": float(diff.mean()),
            "items_per_s": round(len(profiles) / dt, 2),
        }
        report["gates"]["onnx_packed_max_abs_diff"] = _gate(float(diff.max()), gates["onnx_packed_max_abs_diff"])
        plan = Path(engine_path).with_name(PACKED_PLAN) if engine_path is not None else None
        if plan is not None and plan.is_file() and cuda_device_count() > 0:
            with tensorrt_runner(plan) as runner:

                def trt_packed(a: np.ndarray, sg: np.ndarray, an: np.ndarray) -> np.ndarray:
                    feed = {"input_ids": a, "segment_ids": sg, "answer_index": an}
                    return np.asarray(runner.infer(feed)["score"], dtype=np.float32)

                p_tp, dt = _packed_scores(trt_packed, packs, pad, len(profiles))
            report["tensorrt_packed"] = {
                "status": "measured",
                "auc": _auc(labels, p_tp),
                "max_abs_diff": float(np.abs(p_tp - ref_packed).max()),
                "items_per_s": round(len(profiles) / dt, 2),
            }
        else:
            report["tensorrt_packed"] = {"status": "skipped: no packed engine or no GPU"}

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
    """Flat numeric metrics of a report (for a KFP Metrics artifact; seren.metrics' naming scheme): each
    gate's value and `<gate>.passed`, each runtime's `<runtime>.<figure>`; skipped gates are left out."""
    runtimes = ("torch", "onnx", "tensorrt", "onnx_packed", "tensorrt_packed")
    return flatten_metrics(
        {
            "passed": bool(report["passed"]),
            "n": report["n"],
            **{n: g["value"] for n, g in report["gates"].items() if g["value"] is not None},
            **{f"{n}.passed": bool(g["passed"]) for n, g in report["gates"].items() if g["value"] is not None},
            **{rt: {k: v for k, v in report.get(rt, {}).items() if not isinstance(v, bool)} for rt in runtimes},
        }
    )
