"""Export: merged SerenGPT model -> ONNX scorer (dynamic batch/sequence) + a TensorRT attempt.

The TensorRT engine is built only on a CUDA GPU; otherwise the metrics say "skipped: no GPU".
"""

from kfp import dsl
from kfp.dsl import Input, Metrics, Model, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def export_scorer(
    model: Input[Model],
    onnx: Output[Model],
    metrics: Output[Metrics],
    opset: int = 17,
    tensorrt: bool = True,
    fp16: bool = True,
):
    """onnx: a directory with model.onnx (+ model.plan when built) and export.json."""
    from seren.registry.steps import export_step

    stats = export_step(model.path, onnx.path, opset=opset, tensorrt=tensorrt, fp16=fp16)
    onnx.metadata.update({"format": "onnx", "opset": opset, "tensorrt_status": stats["tensorrt_status"]})
    for key, value in stats.items():
        metrics.log_metric(key, value)
