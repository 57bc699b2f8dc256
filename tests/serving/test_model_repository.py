"""Model repository: configs parsed back with protobuf, tokenizer model reproduces SerenScorer.encode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tritonclient.grpc import model_config_pb2 as mc

from seren.errors import ConfigError
from serving.model_repository import build_model_repository, read_config
from serving.triton_models.scorer.model import left_pad_concat
from serving.triton_models.tokenizer.model import PromptEncoder

from .conftest import ITEMS, PROFILES


def test_local_repository_layout_and_configs(model_repo: Path, tiny_scorer) -> None:
    tok, sc, ens = (read_config(model_repo / m) for m in ("tokenizer", "scorer", "serengpt"))
    # tokenizer: python backend, raw texts in, ids out
    assert tok.name == "tokenizer" and tok.backend == "python"
    assert [(i.name, i.data_type, list(i.dims)) for i in tok.input] == [
        ("PROFILE_TEXT", mc.TYPE_STRING, [1]),
        ("ITEM_TEXT", mc.TYPE_STRING, [1]),
    ]
    assert [(o.name, o.data_type, list(o.dims)) for o in tok.output] == [
        ("INPUT_IDS", mc.TYPE_INT64, [-1]),
        ("ATTENTION_MASK", mc.TYPE_INT64, [-1]),
    ]
    # scorer: python backend running ORT, ragged requests re-padded into one batch
    assert sc.backend == "python" and sc.platform == ""
    assert all(i.allow_ragged_batch and list(i.dims) == [-1] for i in sc.input)
    assert [(o.name, list(o.dims)) for o in sc.output] == [("score", [1])]
    assert sc.parameters["pad_token_id"].string_value == str(tiny_scorer.tokenizer.pad_token_id)
    for cfg in (tok, sc, ens):
        assert cfg.max_batch_size == 64
        assert cfg.version_policy.WhichOneof("policy_choice") == "latest"
        assert cfg.version_policy.latest.num_versions == 1
    for cfg in (tok, sc):
        assert cfg.HasField("dynamic_batching") and cfg.dynamic_batching.max_queue_delay_microseconds > 0
        assert list(cfg.dynamic_batching.preferred_batch_size) == [8, 16, 32, 64]
        assert cfg.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    # ensemble: tokenizer -> scorer wired through internal tensors
    assert ens.platform == "ensemble"
    steps = ens.ensemble_scheduling.step
    assert [s.model_name for s in steps] == ["tokenizer", "scorer"]
    assert dict(steps[0].output_map) == {"INPUT_IDS": "_input_ids", "ATTENTION_MASK": "_attention_mask"}
    assert dict(steps[1].input_map) == {"input_ids": "_input_ids", "attention_mask": "_attention_mask"}
    assert dict(steps[1].output_map) == {"score": "SCORE"}
    assert [o.name for o in ens.output] == ["SCORE"]
    # files Triton needs in version 1
    for rel in (
        "tokenizer/1/model.py",
        "tokenizer/1/tokenizer.json",
        "tokenizer/1/prompt.json",
        "tokenizer/1/relation.py",
        "scorer/1/model.py",
        "scorer/1/model.onnx",
        "serengpt/1/manifest.json",
    ):
        assert (model_repo / rel).is_file(), rel


def test_tokenizer_model_reproduces_scorer_encode(model_repo: Path, tiny_scorer) -> None:
    """The python model (no transformers) must feed the scorer exactly what in-process scoring does."""
    enc = PromptEncoder.from_dir(model_repo / "tokenizer" / "1")
    for profiles, items in ((PROFILES, ITEMS), (PROFILES[:1], ITEMS[2:3]), (PROFILES[::-1], ITEMS)):
        ids, mask = enc.encode(profiles, items)
        ref_ids, ref_mask = tiny_scorer.encode(profiles, items)
        np.testing.assert_array_equal(ids, ref_ids.numpy())
        np.testing.assert_array_equal(mask, ref_mask.numpy())
    assert enc.prompt(PROFILES[1], ITEMS[1]) == tiny_scorer.prompts(PROFILES[1], ITEMS[1])[0]


def test_left_pad_concat_matches_padding_all_rows_together(model_repo: Path, tiny_scorer) -> None:
    """Re-padding per-request blocks (dynamic batcher) equals encoding the union at once."""
    parts = [tiny_scorer.encode(PROFILES[i], ITEMS[i]) for i in range(4)]
    ids, mask = left_pad_concat(
        [p[0].numpy() for p in parts], [p[1].numpy() for p in parts], tiny_scorer.tokenizer.pad_token_id
    )
    ref_ids, ref_mask = tiny_scorer.encode(PROFILES, ITEMS)
    np.testing.assert_array_equal(ids, ref_ids.numpy())
    np.testing.assert_array_equal(mask, ref_mask.numpy())


def test_cpu_and_gpu_targets(scorer_onnx: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    cpu = build_model_repository(scorer_onnx, tiny_model_dir, tmp_path / "cpu", target="cpu")
    sc = read_config(cpu / "scorer")
    assert sc.platform == "onnxruntime_onnx" and sc.backend == "" and sc.default_model_filename == "model.onnx"
    assert not any(i.allow_ragged_batch for i in sc.input)
    assert sc.output[0].HasField("reshape") and list(sc.output[0].reshape.shape) == []  # graph emits [batch]
    assert (cpu / "scorer" / "1" / "model.onnx").is_file() and not (cpu / "scorer" / "1" / "model.py").exists()
    # bucketed padding so same-length requests batch on backends without ragged support
    assert PromptEncoder.from_dir(cpu / "tokenizer" / "1").encode(["a"], ["b"])[0].shape[1] % 8 == 0

    with pytest.raises(ConfigError, match="TensorRT engine"):
        build_model_repository(scorer_onnx, tiny_model_dir, tmp_path / "gpu", target="gpu")
    # Config-only check of the gpu target: any file stands in for the engine (no GPU here to build one).
    plan = tmp_path / "stand_in.plan"
    plan.write_bytes(b"not an engine")
    gpu = build_model_repository(scorer_onnx, tiny_model_dir, tmp_path / "gpu", target="gpu", engine_path=plan)
    g = read_config(gpu / "scorer")
    assert g.platform == "tensorrt_plan" and g.default_model_filename == "model.plan"
    assert g.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert (gpu / "scorer" / "1" / "model.plan").read_bytes() == b"not an engine"


def test_new_version_keeps_the_old_one(scorer_onnx: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    build_model_repository(scorer_onnx, tiny_model_dir, repo, version=1)
    build_model_repository(scorer_onnx, tiny_model_dir, repo, version=2, versions_kept=2)
    for m in ("tokenizer", "scorer", "serengpt"):
        assert (repo / m / "1").is_dir() and (repo / m / "2").is_dir()
        assert read_config(repo / m).version_policy.latest.num_versions == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"target": "tpu"}, "unknown serving target"), ({"version": 0}, "positive integer")],
)
def test_bad_arguments_are_config_errors(
    scorer_onnx: Path, tiny_model_dir: Path, tmp_path: Path, kwargs: dict, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        build_model_repository(scorer_onnx, tiny_model_dir, tmp_path / "r", **kwargs)
    assert not (tmp_path / "r").exists()


def test_missing_onnx_or_tokenizer(scorer_onnx: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        build_model_repository(tmp_path / "nope.onnx", tiny_model_dir, tmp_path / "r")
    with pytest.raises(ConfigError, match="tokenizer.json"):
        build_model_repository(scorer_onnx, tmp_path, tmp_path / "r")
