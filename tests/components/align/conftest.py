"""A small training-data dir (profiles + labels of the small synthetic dataset, tiny-model tokenizer)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny-model steps are per-op overhead; avoid OpenMP contention
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def training_data(small_dataset: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from seren.profiles.io import build_profiles_file
    from seren.serengpt.labeling import run_labeling

    root = tmp_path_factory.mktemp("td")
    build_profiles_file(small_dataset, root / "profiles.parquet", str(tiny_model_dir), 64, None, 0.8, snapshots=2)
    run_labeling(small_dataset, root / "profiles.parquet", root / "training_data", base_model=str(tiny_model_dir))
    return root / "training_data"
