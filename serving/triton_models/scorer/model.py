"""Triton `scorer` model for the local target: the exported ONNX scorer under ONNX Runtime.

Production Triton runs the same model.onnx with the onnxruntime backend (or a TensorRT plan).
Here the python backend runs it, because pytriton's server ships only that backend. The
dynamic batcher hands over requests of different sequence lengths (allow_ragged_batch); they are
re-padded on the left into one batch, so one ORT call serves them all.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def left_pad_concat(
    ids_list: list[np.ndarray], mask_list: list[np.ndarray], pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stack left-padded [b_i, T_i] blocks into one [sum b_i, max T_i] batch, still left padded."""
    width = max(a.shape[1] for a in ids_list)
    rows = sum(a.shape[0] for a in ids_list)
    ids = np.full((rows, width), pad_id, dtype=np.int64)
    mask = np.zeros((rows, width), dtype=np.int64)
    r = 0
    for a, m in zip(ids_list, mask_list, strict=True):
        b, t = a.shape
        ids[r : r + b, width - t :] = a
        mask[r : r + b, width - t :] = m
        r += b
    return ids, mask


class OnnxScorer:
    """ONNX Runtime session over the exported scorer graph (input_ids, attention_mask -> score)."""

    def __init__(self, onnx_path: str | Path, intra_op_threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if intra_op_threads:
            opts.intra_op_num_threads = intra_op_threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        (score,) = self.session.run(["score"], {"input_ids": ids, "attention_mask": mask})
        return np.asarray(score, dtype=np.float32).reshape(-1)


def _param(config: dict, key: str, default: str) -> str:
    return config.get("parameters", {}).get(key, {}).get("string_value", default)


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        here = Path(args["model_repository"]) / args["model_version"]
        self.pad_id = int(_param(config, "pad_token_id", "0"))
        self.scorer = OnnxScorer(here / "model.onnx", int(_param(config, "intra_op_num_threads", "0")))

    def execute(self, requests: list) -> list:
        import triton_python_backend_utils as pb_utils

        ids_list, mask_list, errors = [], [], {}
        for k, request in enumerate(requests):
            ids = pb_utils.get_input_tensor_by_name(request, "input_ids").as_numpy()
            mask = pb_utils.get_input_tensor_by_name(request, "attention_mask").as_numpy()
            if ids.shape != mask.shape or ids.ndim != 2:
                errors[k] = (
                    f"input_ids {list(ids.shape)} and attention_mask {list(mask.shape)} must be equal [batch, seq]"
                )
                ids = mask = np.zeros((0, 1), np.int64)
            ids_list.append(ids.astype(np.int64, copy=False))
            mask_list.append(mask.astype(np.int64, copy=False))
        scores = np.zeros((0,), np.float32)
        if sum(a.shape[0] for a in ids_list):
            scores = self.scorer(*left_pad_concat(ids_list, mask_list, self.pad_id))
        responses, r = [], 0
        for k, ids in enumerate(ids_list):
            b = ids.shape[0]
            if k in errors:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(errors[k])))
            else:
                out = pb_utils.Tensor("score", scores[r : r + b].reshape(b, 1))
                responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
            r += b
        return responses
