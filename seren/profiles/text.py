"""Shared text helpers: how an item is shown to the LLM, and token counting.

Profiles, labeling, scoring and serving must render a candidate item the same way, otherwise a
judgment learnt on one rendering is applied to another; `item_text` is that one rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren.errors import ConfigError


def category_top(category: pd.Series) -> pd.Series:
    """The top level of a "Top/Sub" category path."""
    return category.astype(str).str.split("/", n=1).str[0].str.strip()


# Words of an item's description kept in its text. A candidate's text is paid once per candidate
# (20 per user in nearline) and a catalogue's descriptions can run to hundreds of words; the
# opening words carry the kind and quality of the item.
DESCRIPTION_WORDS = 20


def item_text(items: pd.DataFrame) -> pd.Series:
    """One compact description per item (indexed like `items`): title, category, the description's
    first DESCRIPTION_WORDS words. No price: it costs ~9 tokens a candidate (digits tokenize one by
    one) and says little about whether an item would surprise."""
    title = items["title"].fillna("").astype(str).str.strip()
    cat = items["category"].fillna("").astype(str).str.strip()
    out = title + "\nCategory: " + cat
    text = items["text"].fillna("").astype(str).str.strip()
    # Titles are often repeated at the start of the text ("Memento (2000). Genres: ..."); don't
    # pay for them twice.
    lead = pd.Series([t.startswith(ti) and ti != "" for t, ti in zip(text, title, strict=True)], index=items.index)
    rest = text.where(~lead, [t[len(ti) :].lstrip(" .:-—") for t, ti in zip(text, title, strict=True)])
    rest = rest.map(lambda t: " ".join(t.split()[:DESCRIPTION_WORDS]))
    return out.where(rest.eq(""), out + "\n" + rest)


def count_tokens(tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    """Token counts (no special tokens) for many texts in one batched tokenizer call."""
    texts = list(texts)
    if not texts:
        return np.zeros(0, dtype=np.int64)
    enc = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return np.fromiter((len(x) for x in enc), dtype=np.int64, count=len(texts))


def load_tokenizer(name_or_path: str | Path) -> Any:
    """The base model's tokenizer without loading its weights (a model dir, or a base-model name)."""
    from transformers import AutoTokenizer

    path = Path(name_or_path)
    if not path.is_dir():
        try:
            from seren.llm.base import resolve_base_model
        except ImportError as exc:  # pragma: no cover - depends on another module landing
            raise ConfigError(
                f"cannot resolve base model {str(name_or_path)!r} ({exc})", "pass a local HF model directory"
            ) from None
        path = resolve_base_model(str(name_or_path))
    try:
        return AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:  # transformers raises OSError/ValueError/... for a bad dir
        raise ConfigError(
            f"{path}: no usable tokenizer ({type(exc).__name__})", "pass a HF model directory with tokenizer files"
        ) from None
