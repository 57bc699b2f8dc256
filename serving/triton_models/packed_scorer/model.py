"""Triton `packed_scorer` model for the local target: the packed ONNX graph under ONNX Runtime.

Production Triton runs the same packed.onnx with the onnxruntime backend (or a TensorRT plan),
batching only requests of equal shape. Here (python backend) the dynamic batcher hands over
several users' rows of different lengths (allow_ragged_batch); every row is split back into its
packs (`packed.py`, seren.llm.packed), packs of similar length are batched up to `max_tokens`
padded tokens per ONNX Runtime call, and each request gets its scores [rows, C] back.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np


class OnnxPackedScorer:
    """ONNX Runtime session over packed.onnx: (input_ids, segment_ids, answer_index) -> score [N, C]."""

    def __init__(self, onnx_path: str | Path, intra_op_threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if intra_op_threads:
            opts.intra_op_num_threads = intra_op_threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, ids: np.ndarray, seg: np.ndarray, ans: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids, "segment_ids": seg, "answer_index": ans}
        (score,) = self.session.run(["score"], feed)
        return np.asarray(score, dtype=np.float32)


def score_rows(
    scorer: OnnxPackedScorer,
    packed: object,
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    pad_id: int,
    max_tokens: int,
) -> list[np.ndarray]:
    """Scores [r_i, C_i] for each request's (ids, seg, ans) block: split into packs, batch, scatter."""
    packs, owner = [], []
    out = [np.zeros(a.shape, dtype=np.float32) for _, _, a in rows]
    for k, (ids, seg, ans) in enumerate(rows):
        for r in range(ids.shape[0]):
            for p in packed.split_row(ids[r], seg[r], ans[r]):  # type: ignore[attr-defined]
                packs.append(p)
                owner.append((k, r))
    for batch in packed.batch_packs(packs, max_tokens):  # type: ignore[attr-defined]
        probs = scorer(*packed.to_arrays([packs[i] for i in batch], pad_id))  # type: ignore[attr-defined]
        for j, i in enumerate(batch):
            k, r = owner[i]
            out[k][r, packs[i].candidates] = probs[j, : len(packs[i].candidates)]
    return out


def _param(config: dict, key: str, default: str) -> str:
    return config.get("parameters", {}).get(key, {}).get("string_value", default)


def load_packed(path: str | Path):  # noqa: ANN201 - a module
    spec = importlib.util.spec_from_file_location("seren_scorer_packed", str(path))
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        here = Path(args["model_repository"]) / args["model_version"]
        self.pad_id = int(_param(config, "pad_token_id", "0"))
        self.max_tokens = int(_param(config, "max_tokens", "2048"))
        self.packed = load_packed(here / "packed.py")
        self.scorer = OnnxPackedScorer(here / "model.onnx", int(_param(config, "intra_op_num_threads", "0")))

    def execute(self, requests: list) -> list:
        import triton_python_backend_utils as pb_utils

        rows, errors = [], {}
        for k, request in enumerate(requests):
            t = [
                pb_utils.get_input_tensor_by_name(request, n).as_numpy().astype(np.int64, copy=False)
                for n in ("input_ids", "segment_ids", "answer_index")
            ]
            if t[0].shape != t[1].shape or t[0].ndim != 2 or t[2].ndim != 2 or t[2].shape[0] != t[0].shape[0]:
                errors[k] = (
                    f"input_ids {list(t[0].shape)}, segment_ids {list(t[1].shape)}, answer_index {list(t[2].shape)}"
                )
                t = [np.zeros((0, 1), np.int64)] * 3
            rows.append(tuple(t))
        try:
            scores = score_rows(self.scorer, self.packed, rows, self.pad_id, self.max_tokens)  # type: ignore[arg-type]
        except Exception as exc:
            msg = " ".join(str(exc).split())
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(f"packed_scorer: {msg}")) for _ in requests]
        responses = []
        for k, s in enumerate(scores):
            if k in errors:
                err = pb_utils.TritonError(f"packed_scorer: inputs must be [rows, seq] and [rows, C]: {errors[k]}")
                responses.append(pb_utils.InferenceResponse(error=err))
            else:
                responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("score", s)]))
        return responses
