"""Where seren keeps its state when the user does not say (platform layer).

Everything lives under one home directory (``SEREN_HOME``, default ``./.seren``) so a demo or
test run is self-contained and removable. Every default location under it is a function here, so
no module joins ``seren_home() / "..."`` by hand and a folder's name is written once.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def seren_home() -> Path:
    """$SEREN_HOME (default ./.seren), absolute; read on every call so tests can point it elsewhere."""
    return Path(os.environ.get("SEREN_HOME", Path.cwd() / ".seren")).resolve()


def models_dir() -> Path:
    """Base models imported or made here (e.g. the tiny test model)."""
    return seren_home() / "models"


def features_dir() -> Path:
    """The Feast feature data dir (offline sources, SQLite online store, nearline watermark)."""
    return seren_home() / "features"


def exploration_dir() -> Path:
    """The published exploration bundle (clusters/, pair_table.parquet, seqrec/, exploration.json)."""
    return seren_home() / "exploration"


def registry_dir() -> Path:
    """The local model registry (when no environment names a gs:// or other root)."""
    return seren_home() / "registry"


def registry_cache_dir() -> Path:
    """Local copies of versions fetched from a remote (gs://) registry."""
    return seren_home() / "registry_cache"


def tmp_dir() -> Path:
    """Scratch space for staging downloads and uploads (same filesystem as the home, so renames are atomic)."""
    return seren_home() / "tmp"


def triton_dir() -> Path:
    """The local Triton server's files: model_repository/, backends/, logs/."""
    return seren_home() / "triton"


def triton_model_repository() -> Path:
    return triton_dir() / "model_repository"


def triton_logs_dir() -> Path:
    return triton_dir() / "logs"


def serving_dir() -> Path:
    """Exported graphs (scorer.onnx, TensorRT plans) made by `seren serve` and the demo."""
    return seren_home() / "serving"


def monitoring_dir() -> Path:
    """Reference judgments and the nearline judgments parts monitoring reads."""
    return seren_home() / "monitoring"


def reports_dir() -> Path:
    """Drift, quality and simulation reports (HTML + JSON)."""
    return seren_home() / "reports"


def evidently_workspace_dir() -> Path:
    return seren_home() / "evidently_workspace"


def pipeline_runs_dir() -> Path:
    """kfp.local runs: one folder per pipeline and run."""
    return seren_home() / "pipeline_runs"


def compiled_dir() -> Path:
    """Compiled pipeline specs (seren-<name>-<version>.yaml)."""
    return seren_home() / "compiled"


def cache_dir() -> Path:
    """Recomputable caches (e.g. item text embeddings)."""
    return seren_home() / "cache"


def demo_dir() -> Path:
    return seren_home() / "demo"
