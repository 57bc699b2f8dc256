"""ONNX export of the scorer: dynamic axes really dynamic, parity with torch at several shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seren.errors import SerenError
from serving.export import (
    DYNAMIC_AXES,
    build_tensorrt,
    check_dynamic_axes,
    cuda_device_count,
    onnx_metadata,
)
from serving.triton_models.scorer.model import OnnxScorer

from .conftest import ITEMS, PROFILES


def test_exported_graph_declares_dynamic_batch_and_sequence(scorer_onnx: Path) -> None:
    shapes = check_dynamic_axes(scorer_onnx)
    assert shapes["input_ids"] == ["batch", "sequence"]
    assert shapes["attention_mask"] == ["batch", "sequence"]
    assert shapes["score"] == ["batch"]


def test_metadata_records_answer_tokens(scorer_onnx: Path, tiny_scorer) -> None:
    meta = onnx_metadata(scorer_onnx)
    assert int(meta["seren.yes_id"]) == tiny_scorer.yes_id
    assert int(meta["seren.no_id"]) == tiny_scorer.no_id
    assert int(meta["seren.pad_token_id"]) == tiny_scorer.tokenizer.pad_token_id


@pytest.mark.parametrize("n", [1, 3, 4])
def test_onnx_matches_torch_at_other_shapes(scorer_onnx: Path, tiny_scorer, n: int) -> None:
    """Batch sizes and padded lengths other than the traced example give the torch scores."""
    profiles, items = PROFILES[:n], ITEMS[::-1][:n]
    ids, mask = tiny_scorer.encode(profiles, items)
    got = OnnxScorer(scorer_onnx)(ids.numpy(), mask.numpy())
    ref = tiny_scorer.score(profiles, items)
    assert got.shape == (n,)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_check_dynamic_axes_rejects_a_static_export(tmp_path: Path) -> None:
    class Mean(torch.nn.Module):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return (input_ids * attention_mask).float().mean(-1)

    path = tmp_path / "static.onnx"
    example = (torch.ones(2, 5, dtype=torch.int64), torch.ones(2, 5, dtype=torch.int64))
    torch.onnx.export(
        Mean(), example, str(path), input_names=["input_ids", "attention_mask"], output_names=["score"], dynamo=False
    )
    with pytest.raises(SerenError, match="expected dynamic 'batch'"):
        check_dynamic_axes(path)
    assert set(DYNAMIC_AXES) == {"input_ids", "attention_mask", "score"}


@pytest.mark.skipif(cuda_device_count() > 0, reason="this machine has a GPU: the gpu test builds a real engine")
def test_build_tensorrt_reports_skipped_without_gpu(scorer_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.plan"
    res = build_tensorrt(scorer_onnx, out, fp16=True)
    assert res["status"] == "skipped: no GPU"
    assert not out.exists()


def test_build_tensorrt_rejects_bad_profiles(scorer_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(SerenError, match="bad TensorRT profile"):
        build_tensorrt(scorer_onnx, tmp_path / "m.plan", profiles={"batch": (8, 4, 16)})


@pytest.mark.gpu
def test_tensorrt_engine_builds_and_keeps_auc(scorer_onnx: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    """On a GPU machine: FP16 engine with profiles, validated against torch (AUC gate)."""
    import pandas as pd

    from serving.validate import validate

    if cuda_device_count() == 0:
        pytest.skip("no CUDA GPU visible")
    res = build_tensorrt(
        scorer_onnx, tmp_path / "model.plan", fp16=True, profiles={"batch": (1, 4, 16), "sequence": (8, 128, 256)}
    )
    assert res["status"] == "built", res
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"profile_text": PROFILES * 8, "item_text": ITEMS * 8, "label": rng.integers(0, 2, 32)})
    report = validate(tiny_model_dir, scorer_onnx, df, engine_path=tmp_path / "model.plan", batch_size=8)
    assert report["tensorrt"]["status"] == "measured"
    assert report["gates"]["tensorrt_auc_delta"]["passed"] is True
