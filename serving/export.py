"""Export the SerenGPT scorer to ONNX (CPU, any Triton) and TensorRT (GPU only).

The exported graph is the scoring head, not the LM: input_ids/attention_mask (left padded, int64)
-> P(Yes) per row, reading only the answer position and the Yes/No rows of the LM head, so the
served model never computes full-vocabulary logits. Batch and sequence axes are dynamic, and
that is checked on the written graph rather than trusted.

Next to it, `packed.onnx` is the multi-candidate graph (seren.llm.packed): input_ids and
segment_ids [batch, sequence] plus answer_index [batch, candidates] -> score [batch, candidates];
the attention mask and position ids are built inside the graph from the segment ids. A user's
shared part (system text + profile) is computed once per pack instead of once per candidate.

Both graphs output the *calibrated* probability: the model card's calibration map
(seren.llm.calibration) is folded in at export time as plain float ops after the head, so Triton
(ONNX Runtime or the TensorRT engine built from the same graph) serves what seren reports. The
graph's metadata says so ("seren.calibrated", "seren.calibration_sha", "seren.calibration"); a graph
without the flag (exported before, or with calibrate=False) outputs raw P(Yes) and clients apply
the map themselves (`graph_calibration`, seren.llm.calibration.map_left_to_apply).
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
PACKED_NAME, PACKED_PLAN = "packed.onnx", "packed.plan"
PACKED_INPUTS = ("input_ids", "segment_ids", "answer_index")
PACKED_DYNAMIC_AXES: dict[str, dict[int, str]] = {
    "input_ids": {0: "batch", 1: "sequence"},
    "segment_ids": {0: "batch", 1: "sequence"},
    "answer_index": {0: "batch", 1: "candidates"},
    OUTPUT: {0: "batch", 1: "candidates"},
}
# TensorRT optimisation profile defaults: (min, opt, max) for batch and sequence length.
DEFAULT_PROFILE = {"batch": (1, 16, 64), "sequence": (8, 192, 512)}
# Packed graph: up to 16 users (packed_scorer max_batch_size), packs up to 2048 tokens, 256 slots.
PACKED_PROFILE = {"batch": (1, 2, 16), "sequence": (16, 1024, 2048), "candidates": (1, 24, 256)}


def load_scoring_head(model_dir: str | os.PathLike[str]) -> tuple[Any, Any]:
    """(ScoringHead in eval mode, tokenizer) for a merged SerenGPT/base model directory."""
    from seren.llm.base import load_causal_lm
    from seren.llm.prompts import answer_token_ids
    from seren.llm.scorer import ScoringHead

    model, tok = load_causal_lm(model_dir)
    yes_id, no_id = answer_token_ids(tok)
    return ScoringHead(model, yes_id, no_id).eval(), tok


_CALIBRATED_CLS: Any = None


def calibrated_module(head: Any, calibration: dict[str, Any] | None) -> Any:
    """`head` (per-pair or packed scorer) followed by the calibration map, as one traceable module.

    Wraps from the outside (the heads are not changed); identity/None leaves the score as it is.
    """
    global _CALIBRATED_CLS
    if _CALIBRATED_CLS is None:
        import torch

        from seren.llm.calibration import apply_calibration

        class CalibratedHead(torch.nn.Module):
            """score = calibration(head(*inputs)), elementwise (same shape as the head's output)."""

            def __init__(self, head: Any, calibration: dict[str, Any] | None) -> None:
                super().__init__()
                self.head = head
                self.calibration = calibration

            def forward(self, *inputs: Any) -> Any:
                return apply_calibration(self.calibration, self.head(*inputs))

        _CALIBRATED_CLS = CalibratedHead
    return _CALIBRATED_CLS(head, calibration).eval()


def calibration_metadata(calibration: dict[str, Any] | None) -> dict[str, str]:
    """The graph facts saying which map the graph's output already has applied."""
    from seren.llm.calibration import fingerprint, map_json

    return {
        "seren.calibrated": "true",
        "seren.calibration": map_json(calibration),
        "seren.calibration_sha": fingerprint(calibration),
    }


def graph_calibration(onnx_path: str | os.PathLike[str]) -> dict[str, Any]:
    """{"calibrated": bool, "calibration_sha": str | None, "method": str | None} of an exported graph.

    calibrated False: a graph exported without the map folded in (older exports): it outputs raw
    P(Yes) and whoever reads it applies the card's map."""
    import json

    meta = onnx_metadata(onnx_path)
    if meta.get("seren.calibrated") != "true":
        return {"calibrated": False, "calibration_sha": None, "method": None}
    method = json.loads(meta.get("seren.calibration", "{}")).get("method")
    return {"calibrated": True, "calibration_sha": meta.get("seren.calibration_sha"), "method": method}


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
    input_names: tuple[str, ...] = INPUTS,
    dynamic_axes: dict[str, dict[int, str]] | None = None,
) -> Path:
    """Trace `module(*inputs) -> score` with the legacy exporter; atomic write, dynamic axes checked."""
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
                input_names=list(input_names),
                output_names=[OUTPUT],
                dynamic_axes=dynamic_axes or DYNAMIC_AXES,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        check_dynamic_axes(tmp, dynamic_axes)
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


def _packed_example(tok: Any) -> tuple[Any, Any, Any]:
    """Two rows: two users' packs of different length (right padding), the second row holding two
    packs back to back, so the trace covers padding, several candidates and the pack separation."""
    import torch

    from seren.llm.packed import join_packs, pack_user, split_shared, to_arrays
    from seren.llm.prompts import build_prompt

    def user(profile: str, items: list[str], max_len: int = 4096) -> list:
        rows = [list(r) for r in tok([build_prompt(tok, profile, i) for i in items], padding=False)["input_ids"]]
        shared, tails = split_shared(rows)
        return pack_user(shared, tails, max_len=min(max_len, len(shared) + 2 * max(len(t) for t in tails)))

    a = user("Reads science fiction and listens to jazz.", ["A cookbook.", "A jazz record, live in Paris."])
    b = user("Watches documentaries about oceans.", ["A guide to birds of the coast.", "Hiking boots.", "Tea."])
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return tuple(torch.from_numpy(x) for x in to_arrays([join_packs(a[:1]), join_packs(b)], int(pad)))  # type: ignore[return-value]


def _base_metadata(tok: Any, opset: int) -> dict[str, Any]:
    from seren.llm.prompts import answer_token_ids

    yes_id, no_id = answer_token_ids(tok)
    return {"seren.yes_id": yes_id, "seren.no_id": no_id, "seren.pad_token_id": tok.pad_token_id, "seren.opset": opset}


def export_onnx(
    model_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    opset: int = 17,
    packed: bool = True,
    calibrate: bool = True,
) -> Path:
    """Export the scorer of `model_dir` to `out_path` (fp32 ONNX, dynamic batch + sequence).

    packed: also write the multi-candidate graph as `packed.onnx` beside it (what the default
    `serengpt_packed` ensemble serves); registry, validation and the repository builder find it there.
    calibrate: fold the card's calibration map into both graphs (recorded in their metadata);
    False writes raw-P(Yes) graphs without the flag, as exports before the map was folded in.
    """
    from seren.llm.calibration import load_calibration

    head, tok = load_scoring_head(model_dir)
    meta = _base_metadata(tok, opset)
    cal = load_calibration(model_dir)
    if calibrate:
        meta.update(calibration_metadata(cal))
    module = calibrated_module(head, cal) if calibrate else head
    out = export_module_onnx(module, _example_inputs(tok), out_path, opset=opset, metadata=meta)
    if packed:
        export_packed_module(
            head, tok, Path(out_path).with_name(PACKED_NAME), opset=opset, metadata=meta, calibrate=calibrate, cal=cal
        )
    return out


def export_packed_module(
    head: Any,
    tok: Any,
    out_path: str | os.PathLike[str],
    opset: int = 17,
    metadata: dict | None = None,
    *,
    calibrate: bool = False,
    cal: dict[str, Any] | None = None,
) -> Path:
    """Trace a ScoringHead's packed form (PackedScoringHead) to `out_path`; calibrate: followed by `cal`."""
    from seren.llm.scorer import PackedScoringHead

    meta = dict(metadata or {}, **{"seren.graph": "packed"})
    module = PackedScoringHead(head).eval()
    if calibrate:
        meta.update(calibration_metadata(cal))
        module = calibrated_module(module, cal)
    return export_module_onnx(
        module,
        _packed_example(tok),
        out_path,
        opset=opset,
        metadata=meta,
        input_names=PACKED_INPUTS,
        dynamic_axes=PACKED_DYNAMIC_AXES,
    )


def export_packed_onnx(
    model_dir: str | os.PathLike[str], out_path: str | os.PathLike[str], opset: int = 17, calibrate: bool = True
) -> Path:
    """Export only the packed multi-candidate scorer of `model_dir` to `out_path`."""
    from seren.llm.calibration import load_calibration

    head, tok = load_scoring_head(model_dir)
    return export_packed_module(
        head,
        tok,
        out_path,
        opset=opset,
        metadata=_base_metadata(tok, opset),
        calibrate=calibrate,
        cal=load_calibration(model_dir),
    )


def packed_sibling(onnx_path: str | os.PathLike[str]) -> Path | None:
    """The packed graph exported beside a per-pair graph, if there is one."""
    p = Path(onnx_path).with_name(PACKED_NAME)
    return p if p.is_file() and p != Path(onnx_path) else None


def graph_inputs(onnx_path: str | os.PathLike[str]) -> list[str]:
    import onnx

    return [v.name for v in onnx.load(str(onnx_path), load_external_data=False).graph.input]


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


def _profile_triples(
    profiles: dict[str, tuple[int, int, int]] | None, defaults: dict[str, tuple[int, int, int]] | None = None
) -> dict[str, tuple[int, int, int]]:
    defaults = defaults or DEFAULT_PROFILE
    prof = dict(defaults, **(profiles or {}))
    for axis, triple in prof.items():
        if axis not in defaults or len(triple) != 3 or not (0 < triple[0] <= triple[1] <= triple[2]):
            raise ConfigError(
                f"bad TensorRT profile {axis}={triple}",
                f"give {'/'.join(defaults)} as (min, opt, max), 0 < min <= opt <= max",
            )
    return prof


def build_tensorrt(
    onnx_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    fp16: bool = True,
    profiles: dict[str, tuple[int, int, int]] | None = None,
    packed: bool = True,
) -> dict:
    """Build a TensorRT engine (via polygraphy) with batch/sequence optimisation profiles.

    Works for the per-pair graph and the packed graph (answer_index gets a `candidates` profile).
    packed: when `packed.onnx` lies beside `onnx_path`, also build `packed.plan` beside `out_path`
    (reported under "packed"). Without a CUDA GPU (or without tensorrt installed) nothing is built
    and the returned metrics say so: {"status": "skipped: no GPU"} - never a fake success.
    The engine is built from the exported graph itself, calibration map included (plain float ops),
    so a plan serves the same calibrated score as the ONNX graph ("calibrated" in the result).
    """
    is_packed = Path(onnx_path).is_file() and "segment_ids" in graph_inputs(onnx_path)
    prof = _profile_triples(profiles, PACKED_PROFILE if is_packed else DEFAULT_PROFILE)
    sibling = packed_sibling(onnx_path) if packed and not is_packed else None
    if cuda_device_count() == 0:
        res: dict[str, Any] = {"status": "skipped: no GPU", "fp16": fp16}
        if sibling is not None:
            res["packed"] = {"status": "skipped: no GPU", "fp16": fp16}
        return res
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
    if is_packed:
        c = prof["candidates"]
        for name in ("input_ids", "segment_ids"):
            profile.add(name, min=(b[0], s[0]), opt=(b[1], s[1]), max=(b[2], s[2]))
        profile.add("answer_index", min=(b[0], c[0]), opt=(b[1], c[1]), max=(b[2], c[2]))
    else:
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
    res = {
        "status": "built",
        "path": str(out),
        "fp16": fp16,
        "profiles": {k: list(v) for k, v in prof.items()},
        "build_s": round(time.perf_counter() - t0, 2),
        "size_bytes": out.stat().st_size,
        "tensorrt_version": trt.__version__,
        "calibrated": graph_calibration(onnx_path)["calibrated"],
    }
    if sibling is not None:
        res["packed"] = build_tensorrt(sibling, out.with_name(PACKED_PLAN), fp16=fp16, packed=False)
    return res


def tensorrt_runner(engine_path: str | os.PathLike[str]):  # noqa: ANN201 - polygraphy runner
    """A polygraphy TrtRunner over a saved engine (GPU only): `with runner: runner.infer(feed)`."""
    from polygraphy.backend.common import BytesFromPath
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    return TrtRunner(EngineFromBytes(BytesFromPath(str(engine_path))))
