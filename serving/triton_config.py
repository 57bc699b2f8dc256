"""The Triton `config.pbtxt` of every model in seren's repository (tokenizer, scorer, ensemble, and
the packed packer -> packed_scorer -> serengpt_packed path), as `model_config_pb2.ModelConfig`
messages written with protobuf text_format, so every field is checked by the schema Triton parses.
serving/model_repository.py places the files and writes these configs beside them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from seren.errors import ConfigError
from seren.io import write_text

Target = Literal["local", "cpu", "gpu"]
TARGETS: tuple[str, ...] = ("local", "cpu", "gpu")
ENSEMBLE, TOKENIZER, SCORER = "serengpt", "tokenizer", "scorer"
PACKED_ENSEMBLE, PACKER, PACKED_SCORER = "serengpt_packed", "packer", "packed_scorer"


# -- configs ----------------------------------------------------------------------------------------


def _tensor(msg: Any, name: str, dtype: int, dims: list[int]) -> Any:
    msg.name = name
    msg.data_type = dtype
    msg.dims.extend(dims)
    return msg


def _common(cfg: mc.ModelConfig, max_batch_size: int, versions: int) -> None:
    cfg.max_batch_size = max_batch_size
    cfg.version_policy.latest.num_versions = versions


def _dynamic_batching(cfg: mc.ModelConfig, max_batch_size: int, queue_delay_us: int) -> None:
    db = cfg.dynamic_batching
    db.preferred_batch_size.extend(sorted({b for b in (8, 16, 32, max_batch_size) if b <= max_batch_size}))
    db.max_queue_delay_microseconds = queue_delay_us


def tokenizer_config(
    max_batch_size: int = 64, queue_delay_us: int = 1000, versions: int = 1, instances: int = 1
) -> mc.ModelConfig:
    cfg = mc.ModelConfig(name=TOKENIZER, backend="python")
    _common(cfg, max_batch_size, versions)
    _tensor(cfg.input.add(), "PROFILE_TEXT", mc.TYPE_STRING, [1])
    _tensor(cfg.input.add(), "ITEM_TEXT", mc.TYPE_STRING, [1])
    _tensor(cfg.output.add(), "INPUT_IDS", mc.TYPE_INT64, [-1])
    _tensor(cfg.output.add(), "ATTENTION_MASK", mc.TYPE_INT64, [-1])
    _dynamic_batching(cfg, max_batch_size, queue_delay_us)
    cfg.instance_group.add(kind=mc.ModelInstanceGroup.KIND_CPU, count=instances)
    return cfg


def _scorer_base(
    name: str, target: Target, max_batch_size: int, versions: int, inputs: tuple[str, ...]
) -> mc.ModelConfig:
    """What both scorer graphs share: the backend of the target and int64 inputs of any length
    (ragged only on the python scorer, which re-pads requests of different lengths into one batch)."""
    if target not in TARGETS:
        raise ConfigError(f"unknown serving target {target!r}", f"use one of {', '.join(TARGETS)}")
    cfg = mc.ModelConfig(name=name)
    if target == "local":
        cfg.backend = "python"
    elif target == "cpu":
        cfg.platform = "onnxruntime_onnx"
        cfg.default_model_filename = "model.onnx"
    else:
        cfg.platform = "tensorrt_plan"
        cfg.default_model_filename = "model.plan"
    _common(cfg, max_batch_size, versions)
    for inp_name in inputs:
        inp = _tensor(cfg.input.add(), inp_name, mc.TYPE_INT64, [-1])
        inp.allow_ragged_batch = target == "local"
    return cfg


def scorer_config(
    target: Target,
    max_batch_size: int = 64,
    queue_delay_us: int = 5000,
    versions: int = 1,
    instances: int = 1,
    pad_token_id: int = 0,
    intra_op_threads: int = 0,
) -> mc.ModelConfig:
    cfg = _scorer_base(SCORER, target, max_batch_size, versions, ("input_ids", "attention_mask"))
    out = _tensor(cfg.output.add(), "score", mc.TYPE_FP32, [1])
    if target != "local":
        out.reshape.SetInParent()  # the graph's output is [batch]; Triton sees [batch, 1]
    _dynamic_batching(cfg, max_batch_size, queue_delay_us)
    kind = mc.ModelInstanceGroup.KIND_GPU if target == "gpu" else mc.ModelInstanceGroup.KIND_CPU
    cfg.instance_group.add(kind=kind, count=instances)
    cfg.parameters["pad_token_id"].string_value = str(pad_token_id)
    if target == "local":
        cfg.parameters["intra_op_num_threads"].string_value = str(intra_op_threads)
    elif target == "cpu" and intra_op_threads:
        cfg.parameters["intra_op_thread_count"].string_value = str(intra_op_threads)
    return cfg


def _graph_facts(cfg: mc.ModelConfig, facts: dict[str, str] | None) -> None:
    """String parameters clients read through the model-config API (e.g. calibrated: "true")."""
    for key, value in (facts or {}).items():
        cfg.parameters[key].string_value = str(value)


def ensemble_config(max_batch_size: int = 64, versions: int = 1, facts: dict[str, str] | None = None) -> mc.ModelConfig:
    """facts: the scorer graph's facts for clients (`calibration_facts`: its output is calibrated)."""
    cfg = mc.ModelConfig(name=ENSEMBLE, platform="ensemble")
    _common(cfg, max_batch_size, versions)
    _graph_facts(cfg, facts)
    _tensor(cfg.input.add(), "PROFILE_TEXT", mc.TYPE_STRING, [1])
    _tensor(cfg.input.add(), "ITEM_TEXT", mc.TYPE_STRING, [1])
    _tensor(cfg.output.add(), "SCORE", mc.TYPE_FP32, [1])
    tok = cfg.ensemble_scheduling.step.add(model_name=TOKENIZER, model_version=-1)
    tok.input_map["PROFILE_TEXT"] = "PROFILE_TEXT"
    tok.input_map["ITEM_TEXT"] = "ITEM_TEXT"
    tok.output_map["INPUT_IDS"] = "_input_ids"
    tok.output_map["ATTENTION_MASK"] = "_attention_mask"
    sc = cfg.ensemble_scheduling.step.add(model_name=SCORER, model_version=-1)
    sc.input_map["input_ids"] = "_input_ids"
    sc.input_map["attention_mask"] = "_attention_mask"
    sc.output_map["score"] = "SCORE"
    return cfg


def packer_config(
    versions: int = 1,
    instances: int = 1,
    max_batch_size: int = 16,
    max_len: int = 2048,
    pad_to_multiple_of: int = 1,
    slots_multiple_of: int = 1,
) -> mc.ModelConfig:
    """Per request row one user: PROFILE_TEXT [1], ITEM_TEXT [C] -> one packed row."""
    cfg = mc.ModelConfig(name=PACKER, backend="python")
    _common(cfg, max_batch_size, versions)
    _tensor(cfg.input.add(), "PROFILE_TEXT", mc.TYPE_STRING, [1])
    _tensor(cfg.input.add(), "ITEM_TEXT", mc.TYPE_STRING, [-1])
    for name in ("INPUT_IDS", "SEGMENT_IDS", "ANSWER_INDEX"):
        _tensor(cfg.output.add(), name, mc.TYPE_INT64, [-1])
    cfg.instance_group.add(kind=mc.ModelInstanceGroup.KIND_CPU, count=instances)
    cfg.parameters["max_len"].string_value = str(max_len)
    cfg.parameters["pad_to_multiple_of"].string_value = str(pad_to_multiple_of)
    cfg.parameters["slots_multiple_of"].string_value = str(slots_multiple_of)
    return cfg


def packed_scorer_config(
    target: Target,
    max_batch_size: int = 16,
    queue_delay_us: int = 2000,
    versions: int = 1,
    instances: int = 1,
    pad_token_id: int = 0,
    intra_op_threads: int = 0,
    max_tokens: int = 2048,
) -> mc.ModelConfig:
    """The packed graph; the dynamic batcher groups users' rows (ragged on the python scorer, which
    re-packs them; equal shapes only on onnxruntime/TensorRT, hence the packer's rounding there)."""
    cfg = _scorer_base(PACKED_SCORER, target, max_batch_size, versions, ("input_ids", "segment_ids", "answer_index"))
    _tensor(cfg.output.add(), "score", mc.TYPE_FP32, [-1])
    db = cfg.dynamic_batching
    db.max_queue_delay_microseconds = queue_delay_us
    kind = mc.ModelInstanceGroup.KIND_GPU if target == "gpu" else mc.ModelInstanceGroup.KIND_CPU
    cfg.instance_group.add(kind=kind, count=instances)
    cfg.parameters["pad_token_id"].string_value = str(pad_token_id)
    if target == "local":
        cfg.parameters["intra_op_num_threads"].string_value = str(intra_op_threads)
        cfg.parameters["max_tokens"].string_value = str(max_tokens)
    elif target == "cpu" and intra_op_threads:
        cfg.parameters["intra_op_thread_count"].string_value = str(intra_op_threads)
    return cfg


def packed_ensemble_config(
    max_batch_size: int = 16, versions: int = 1, facts: dict[str, str] | None = None
) -> mc.ModelConfig:
    """serengpt_packed: a request row is one user (PROFILE_TEXT [1], ITEM_TEXT [C]) -> SCORE [C]."""
    cfg = mc.ModelConfig(name=PACKED_ENSEMBLE, platform="ensemble")
    _common(cfg, max_batch_size, versions)
    _graph_facts(cfg, facts)
    _tensor(cfg.input.add(), "PROFILE_TEXT", mc.TYPE_STRING, [1])
    _tensor(cfg.input.add(), "ITEM_TEXT", mc.TYPE_STRING, [-1])
    _tensor(cfg.output.add(), "SCORE", mc.TYPE_FP32, [-1])
    pk = cfg.ensemble_scheduling.step.add(model_name=PACKER, model_version=-1)
    pk.input_map["PROFILE_TEXT"] = "PROFILE_TEXT"
    pk.input_map["ITEM_TEXT"] = "ITEM_TEXT"
    for out, inner in (("INPUT_IDS", "input_ids"), ("SEGMENT_IDS", "segment_ids"), ("ANSWER_INDEX", "answer_index")):
        pk.output_map[out] = f"_{inner}"
    sc = cfg.ensemble_scheduling.step.add(model_name=PACKED_SCORER, model_version=-1)
    for inner in ("input_ids", "segment_ids", "answer_index"):
        sc.input_map[inner] = f"_{inner}"
    sc.output_map["score"] = "SCORE"
    return cfg


def write_config(cfg: mc.ModelConfig, model_dir: str | os.PathLike[str]) -> Path:
    return write_text(Path(model_dir) / "config.pbtxt", text_format.MessageToString(cfg))


def read_config(model_dir: str | os.PathLike[str]) -> mc.ModelConfig:
    """Parse a config.pbtxt back into a ModelConfig (what Triton does on load)."""
    path = Path(model_dir) / "config.pbtxt"
    return text_format.Parse(path.read_text(), mc.ModelConfig())
