"""Validation gates: parity and AUC against the torch scorer, pass/fail per gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seren.errors import DataError
from serving.validate import report_metrics, validate

from .conftest import ITEMS, PROFILES


def _eval_df(n: int = 24, labels: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    df = pd.DataFrame(
        {
            "user_id": [f"u{i % 4}" for i in range(n)],
            "profile_text": [PROFILES[i % 4] for i in range(n)],
            "item_text": [f"{ITEMS[i % 4][:60]} #{i}" for i in range(n)],
        }
    )
    if labels:
        df["label"] = rng.integers(0, 2, n)
    return df


def test_faithful_export_passes_every_gate(tiny_model_dir: Path, scorer_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "validation.json"
    report = validate(tiny_model_dir, scorer_onnx, _eval_df(), out_path=out, batch_size=8, latency_rows=4)
    assert report["passed"] is True
    assert report["gates"]["onnx_max_abs_diff"]["passed"] is True
    assert report["gates"]["onnx_max_abs_diff"]["value"] <= 1e-3
    assert report["gates"]["onnx_auc_delta"]["passed"] is True
    assert report["gates"]["tensorrt_auc_delta"]["status"].startswith("skipped")
    for rt in ("torch", "onnx"):
        assert report[rt]["items_per_s"] > 0 and report[rt]["latency_ms_p99"] >= report[rt]["latency_ms_p50"] > 0
    assert json.loads(out.read_text())["passed"] is True
    metrics = report_metrics(report)
    assert metrics["passed"] == 1.0 and "onnx_max_abs_diff" in metrics and "tensorrt_auc_delta" not in metrics


def test_export_of_another_model_fails_the_parity_gate(tiny_model_dir: Path, scorer_onnx: Path, tmp_path: Path) -> None:
    """The same graph with different weights (seed 1) must not pass as this model's export."""
    from seren.llm.base import make_tiny_model
    from serving.export import export_onnx

    other = export_onnx(make_tiny_model(tmp_path / "other", seed=1), tmp_path / "other.onnx")
    report = validate(tiny_model_dir, other, _eval_df(), batch_size=8, latency_rows=2)
    assert report["gates"]["onnx_max_abs_diff"]["passed"] is False
    assert report["gates"]["onnx_max_abs_diff"]["status"] == "fail"
    assert report["passed"] is False


def test_without_labels_the_auc_gate_is_skipped_not_passed(tiny_model_dir: Path, scorer_onnx: Path) -> None:
    report = validate(tiny_model_dir, scorer_onnx, _eval_df(8, labels=False), batch_size=8, latency_rows=2)
    gate = report["gates"]["onnx_auc_delta"]
    assert gate["passed"] is None and gate["status"].startswith("skipped")
    assert report["passed"] is True  # the parity gate still decides


def test_bad_eval_data_is_a_one_line_error(tiny_model_dir: Path, scorer_onnx: Path) -> None:
    with pytest.raises(DataError, match="lacks columns"):
        validate(tiny_model_dir, scorer_onnx, pd.DataFrame({"item_text": ["x"]}))
    with pytest.raises(DataError, match="no rows"):
        validate(tiny_model_dir, scorer_onnx, pd.DataFrame({"profile_text": [], "item_text": []}))
