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


EXPLORATION_STAGES = ("clusters", "transitions", "novelty_finetune", "feedback_alignment", "pair_table", "seqrec_train")


def exploration_stage_dirs(
    dataset: Path,
    work: Path,
    base_model: str,
    *,
    until: str = "seqrec_train",
    n_top: int = 3,
    n_sub: int = 2,
    max_steps: int = 4,
    batch_size: int = 4,
    min_support: int = 2,
    n_candidates: int = 4,
    seqrec_epochs: int = 1,
    seed: int = 0,
) -> dict[str, str]:
    """The exploration pipeline's stage outputs for component tests: the SAME library call each
    component makes, one at a time, in the pipeline's order (pipelines/exploration/pipeline.py is
    the one definition of the DAG; this only builds test inputs, without kfp.local's per-task start-up)."""
    from seren.exploration.seqrec import train_and_evaluate
    from seren.exploration.workflow import (
        run_clusters,
        run_feedback_alignment,
        run_novelty_finetune,
        run_pair_table,
        run_transitions,
    )

    d = {s: work / s for s in EXPLORATION_STAGES}
    steps = {
        "clusters": lambda: run_clusters(dataset, d["clusters"], n_top=n_top, n_sub=n_sub, seed=seed),
        "transitions": lambda: run_transitions(dataset, d["clusters"], d["transitions"]),
        "novelty_finetune": lambda: run_novelty_finetune(
            d["transitions"],
            d["clusters"],
            d["novelty_finetune"],
            base_model=base_model,
            max_steps=max_steps,
            batch_size=batch_size,
            seed=seed,
        ),  # fmt: skip
        "feedback_alignment": lambda: run_feedback_alignment(
            dataset, d["clusters"], d["transitions"], d["feedback_alignment"], min_support=min_support, seed=seed
        ),
        "pair_table": lambda: run_pair_table(
            d["novelty_finetune"], d["pair_table"], d["feedback_alignment"], n_candidates=n_candidates
        ),
        "seqrec_train": lambda: train_and_evaluate(
            dataset, d["seqrec_train"], clusters_dir=d["clusters"], epochs=seqrec_epochs, seed=seed, progress=False
        ),
    }
    for stage in EXPLORATION_STAGES[: EXPLORATION_STAGES.index(until) + 1]:
        steps[stage]()
    return {s: str(p) for s, p in d.items()}


@pytest.fixture(scope="session")
def exploration_stages(small_dataset: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every exploration stage's output on the small dataset and the tiny model (3x2 = 6 clusters), once per session."""
    return exploration_stage_dirs(small_dataset, tmp_path_factory.mktemp("exploration_stages"), str(tiny_model_dir))
