"""Export the SerenGPT scorer to ONNX (CPU, any Triton) and TensorRT (GPU only).

The exported graph is the scoring head, not the LM: input_ids/attention_mask (left padded, int64)
-> P(Yes) per row, reading only the answer position and the Yes/No rows of the LM head, so the
served model never computes full-vocabulary logits. Batch and sequence axes are dynamic, and
that is checked on the written graph rather than trusted.
"""

from __future__ import annotations

import ctypes
import os
import time
import warnings
from pathlib import Path
from typing import Any

from seren.errors import ConfigError, SerenError
from seren.io import atomic_path

INPUTS = ("input_ids", "attention_mask")
OUTPUT = "score"
DYNAMIC_AXES: dict[str, dict[int, str]] = {
    "input_ids": {0: "batch", 1: "sequence"},
    "attention_mask": {0: "batch", 1: "sequence"},
    OUTPUT: {0: "batch"},
}
# TensorRT optimisation profile defaults: (min, opt, max) for batch and sequence length.
DEFAULT_PROFILE = {"batch": (1, 16, 64), "sequence": (8, 192, 512)}


def load_scoring_head(model_dir: str | os.PathLike[str]) -> tuple[Any, Any]:
    """(ScoringHead in eval mode, tokenizer) for a merged SerenGPT/base model directory."""
    from seren.llm.base import load_causal_lm
    from seren.llm.prompts import answer_token_ids
    from seren.llm.scorer import ScoringHead

    model, tok = load_causal_lm(model_dir)
    yes_id, no_id = answer_token_ids(tok)
    return ScoringHead(model, yes_id, no_id).eval(), tok


def _example_inputs(tok: Any) -> tuple[Any, Any]:
    """A left-padded batch of two prompts of different length, so the trace covers the mask path."""
    from seren.llm.prompts import build_prompt

    prompts = [
        build_prompt(tok, "Reads science fiction and listens to jazz.", "A cookbook."),
        build_prompt(
            tok, "Watches documentaries about oceans, hiking gear, long walks.", "A guide to birds of the coast."
        ),
    ]
    tok.padding_side = "left"
    enc = tok(prompts, padding=True, return_tensors="pt")
    return enc["input_ids"].long(), enc["attention_mask"].long()


def export_module_onnx(
    module: Any,
    example: tuple[Any, Any],
    out_path: str | os.PathLike[str],
    opset: int = 17,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Trace `module(input_ids, attention_mask) -> score[B]` with the legacy exporter; atomic write."""
    import onnx
    import torch

    out = Path(out_path)
    with atomic_path(out, suffix=".onnx") as tmp:
        with torch.no_grad(), warnings.catch_warnings():
            # The legacy exporter is chosen on purpose (fast, proven here); its trace warnings
            # concern Python-side shape checks, and parity is verified on other shapes instead.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*aten::index.*")
            torch.onnx.export(
                module,
                example,
                str(tmp),
                input_names=list(INPUTS),
                output_names=[OUTPUT],
                dynamic_axes=DYNAMIC_AXES,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        check_dynamic_axes(tmp)
        if metadata:
            model = onnx.load(str(tmp))
            for k, v in metadata.items():
                model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=str(v)))
            onnx.save(model, str(tmp))
    return out


def check_dynamic_axes(onnx_path: str | os.PathLike[str], expected: dict[str, dict[int, str]] | None = None) -> dict:
    """Assert that every declared dynamic axis is a symbolic dim (dim_param) in the saved graph."""
    import onnx

    expected = expected or DYNAMIC_AXES
    model = onnx.load(str(onnx_path), load_external_data=False)
    shapes = {}
    for v in list(model.graph.input) + list(model.graph.output):
        shapes[v.name] = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
    for name, axes in expected.items():
        if name not in shapes:
            raise SerenError(
                f"exported graph {onnx_path} has no tensor {name!r} (has {sorted(shapes)})", "re-export the scorer"
            )
        for axis, label in axes.items():
            dims = shapes[name]
            if axis >= len(dims) or dims[axis] != label:
                raise SerenError(
                    f"exported graph {onnx_path}: {name} axis {axis} is {dims[axis] if axis < len(dims) else 'missing'}, "
                    f"expected dynamic {label!r}",
                    "export with dynamic_axes for batch and sequence",
                )
    return shapes


def export_onnx(model_dir: str | os.PathLike[str], out_path: str | os.PathLike[str], opset: int = 17) -> Path:
    """Export the scorer of `model_dir` to `out_path` (fp32 ONNX, dynamic batch + sequence)."""
    from seren.llm.prompts import answer_token_ids

    head, tok = load_scoring_head(model_dir)
    yes_id, no_id = answer_token_ids(tok)
    meta = {"seren.yes_id": yes_id, "seren.no_id": no_id, "seren.pad_token_id": tok.pad_token_id, "seren.opset": opset}
    return export_module_onnx(head, _example_inputs(tok), out_path, opset=opset, metadata=meta)


def onnx_metadata(onnx_path: str | os.PathLike[str]) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}


# -- TensorRT ------------------------------------------------------------------------------------


def cuda_device_count() -> int:
    """CUDA devices visible through the driver API (0 without a driver); needs no CUDA torch."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    if cuda.cuInit(0) != 0:
        return 0
    n = ctypes.c_int(0)
    if cuda.cuDeviceGetCount(ctypes.byref(n)) != 0:
        return 0
    return int(n.value)


def _profile_triples(profiles: dict[str, tuple[int, int, int]] | None) -> dict[str, tuple[int, int, int]]:
    prof = dict(DEFAULT_PROFILE, **(profiles or {}))
    for axis, triple in prof.items():
        if axis not in DEFAULT_PROFILE or len(triple) != 3 or not (0 < triple[0] <= triple[1] <= triple[2]):
            raise ConfigError(
                f"bad TensorRT profile {axis}={triple}", "give batch/sequence as (min, opt, max), 0 < min <= opt <= max"
            )
    return prof


def build_tensorrt(
    onnx_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    fp16: bool = True,
    profiles: dict[str, tuple[int, int, int]] | None = None,
) -> dict:
    """Build a TensorRT engine (via polygraphy) with batch/sequence optimisation profiles.

    Without a CUDA GPU (or without tensorrt installed) nothing is built and the returned
    metrics say so: {"status": "skipped: no GPU"} - never a fake success.
    """
    prof = _profile_triples(profiles)
    if cuda_device_count() == 0:
        return {"status": "skipped: no GPU", "fp16": fp16}
    try:
        import tensorrt as trt
        from polygraphy.backend.trt import (
            CreateConfig,
            Profile,
            engine_from_network,
            network_from_onnx_path,
            save_engine,
        )
    except ImportError as exc:
        return {"status": f"skipped: tensorrt not installed ({exc.name}); pip install 'seren[tensorrt]'", "fp16": fp16}
    t0 = time.perf_counter()
    profile = Profile()
    b, s = prof["batch"], prof["sequence"]
    for name in INPUTS:
        profile.add(name, min=(b[0], s[0]), opt=(b[1], s[1]), max=(b[2], s[2]))
    try:
        engine = engine_from_network(
            network_from_onnx_path(str(onnx_path)), config=CreateConfig(fp16=fp16, profiles=[profile])
        )
    except Exception as exc:  # parser/builder errors: report them, never a half-written engine
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SerenError(
            f"TensorRT engine build failed: {first}", "check the TensorRT log above; try fp16=False"
        ) from exc
    out = Path(out_path)
    with atomic_path(out, suffix=".plan") as tmp:
        save_engine(engine, str(tmp))
    return {
        "status": "built",
        "path": str(out),
        "fp16": fp16,
        "profiles": {k: list(v) for k, v in prof.items()},
        "build_s": round(time.perf_counter() - t0, 2),
        "size_bytes": out.stat().st_size,
        "tensorrt_version": trt.__version__,
    }


def tensorrt_runner(engine_path: str | os.PathLike[str]):  # noqa: ANN201 - polygraphy runner
    """A polygraphy TrtRunner over a saved engine (GPU only): `with runner: runner.infer(feed)`."""
    from polygraphy.backend.common import BytesFromPath
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    return TrtRunner(EngineFromBytes(BytesFromPath(str(engine_path))))
