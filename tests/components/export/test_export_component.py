"""export_scorer component: unit tests via python_func (the kfp.local run is in the deploy chain test)."""

# no `from __future__ import annotations`: KFP reads the pipeline's parameter annotations
import json
from pathlib import Path

import pytest
from kfp import dsl

from components.export.component import export_scorer
from seren.errors import SerenError
from serving.export import check_dynamic_axes, cuda_device_count


def test_export_component_unit(artifact, tiny_model_dir: Path) -> None:
    onnx, metrics = artifact(dsl.Model, "onnx"), artifact(dsl.Metrics, "metrics")
    export_scorer.python_func(model=dsl.Model(name="model", uri=str(tiny_model_dir)), onnx=onnx, metrics=metrics)
    out = Path(onnx.path)
    shapes = check_dynamic_axes(out / "model.onnx")  # batch and sequence really dynamic in the written graph
    assert shapes["input_ids"] == ["batch", "sequence"] and shapes["score"] == ["batch"]
    m = metrics.metadata
    assert m["onnx_bytes"] == (out / "model.onnx").stat().st_size and m["opset"] == 17
    if cuda_device_count() == 0:  # no fake success: the attempt is reported as skipped
        assert m["tensorrt_status"] == "skipped: no GPU" and m["tensorrt_built"] == 0.0
        assert not (out / "model.plan").exists()
    info = json.loads((out / "export.json").read_text())
    assert (
        info["tensorrt"]["status"] == m["tensorrt_status"] and onnx.metadata["tensorrt_status"] == m["tensorrt_status"]
    )


def test_export_component_bad_model_unit(artifact, tmp_path: Path) -> None:
    onnx, metrics = artifact(dsl.Model, "onnx"), artifact(dsl.Metrics, "metrics")
    with pytest.raises(SerenError):
        export_scorer.python_func(
            model=dsl.Model(name="model", uri=str(tmp_path / "missing")), onnx=onnx, metrics=metrics
        )
    assert not (Path(onnx.path) / "model.onnx").exists() and "tensorrt_status" not in metrics.metadata


@pytest.mark.gpu
def test_export_component_builds_tensorrt_on_gpu(artifact, tiny_model_dir: Path) -> None:
    if cuda_device_count() == 0:
        pytest.skip("needs a CUDA GPU (run on a GPU machine)")
    onnx, metrics = artifact(dsl.Model, "onnx"), artifact(dsl.Metrics, "metrics")
    export_scorer.python_func(
        model=dsl.Model(name="model", uri=str(tiny_model_dir)), onnx=onnx, metrics=metrics, fp16=True
    )
    assert metrics.metadata["tensorrt_status"] == "built" and (Path(onnx.path) / "model.plan").stat().st_size > 0
