"""Base models, prompts, the P(Yes) scorer and text backends shared by SerenGPT and exploration.

Re-exports are lazy so that `import seren.llm.prompts` (CLI start-up, Triton tokenizer model)
does not pay for importing torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DEFAULT_BASE_MODEL": "base",
    "resolve_base_model": "base",
    "load_causal_lm": "base",
    "make_tiny_model": "base",
    "model_cache_dir": "base",
    "ScoringHead": "scorer",
    "PackedScoringHead": "scorer",
    "SerenScorer": "scorer",
    "TextBackend": "backends",
    "LocalBackend": "backends",
    "OpenAIBackend": "backends",
    "get_backend": "backends",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
