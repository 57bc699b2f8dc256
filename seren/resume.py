"""The one resume rule for a retried training step: a content fingerprint of its settings and data.

A step that trains (LoRA SFT/alignment in `seren.serengpt.sft`, the sequence recommender in
`seren.exploration.seqrec.train`) keeps its checkpoint with the fingerprint it was made for; a
retry with the same fingerprint resumes, anything else (other settings, other data, another
parent model) starts over. Which steps run, and in what order, is the pipeline's business
(pipelines/<name>/pipeline.py): nothing here skips a step.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

LENGTH = 16  # hex digits kept: a collision needs ~2^32 runs in one directory


def fingerprint(*parts: Any) -> str:
    """Stable hash of JSON-able parts (dict keys sorted; anything else by `str`)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:LENGTH]


def frame_fingerprint(df: pd.DataFrame, columns: Sequence[str]) -> str:
    """Content hash of a table's columns (row order counts): a changed dataset must not resume an old run."""
    h = pd.util.hash_pandas_object(df[list(columns)].reset_index(drop=True), index=False)
    return hashlib.sha256(h.to_numpy().tobytes()).hexdigest()[:LENGTH]
