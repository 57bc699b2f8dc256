"""Shared fixtures for component tests (tests/components/<stage>/test_*.py).

Unit tests call `component.python_func(...)` with real `kfp.dsl` artifacts whose uri is a fresh
tmp path (`artifact`); local tests run the component with kfp.local (`kfp_local` from
tests/conftest.py) and check what it wrote (`local_outputs`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch


@pytest.fixture
def artifact(tmp_path: Path) -> Callable[..., Any]:
    """`artifact(dsl.Dataset, "dataset")` -> an artifact at tmp_path/artifacts/<name> (not created)."""
    from kfp import dsl

    def make(cls: type = dsl.Artifact, name: str = "artifact", metadata: dict | None = None) -> Any:
        return cls(name=name, uri=str(tmp_path / "artifacts" / name), metadata=dict(metadata or {}))

    return make


@pytest.fixture
def local_outputs() -> Callable[[Any], dict[str, Any]]:
    """A kfp.local task -> {output name: value or artifact}, failing loudly when the task wrote nothing
    (kfp.local reports some failures only as missing outputs)."""

    def get(task: Any) -> dict[str, Any]:
        outputs = dict(task.outputs)
        assert outputs, "kfp.local task produced no outputs"
        return outputs

    return get


@pytest.fixture
def one_thread() -> Any:
    """Tiny-model training steps are per-op overhead: one torch thread avoids OpenMP contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def training_data(small_dataset: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small training-data dir (profiles + labels of the small synthetic dataset, tiny-model tokenizer),
    built once for the distill/align/evaluate component tests."""
    from seren.profiles.io import build_profiles_file
    from seren.serengpt.labeling import run_labeling

    root = tmp_path_factory.mktemp("td")
    build_profiles_file(small_dataset, root / "profiles.parquet", str(tiny_model_dir), 64, None, 0.8, snapshots=2)
    run_labeling(small_dataset, root / "profiles.parquet", root / "training_data", base_model=str(tiny_model_dir))
    return root / "training_data"
