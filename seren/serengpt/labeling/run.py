"""One call for the CLI and the KFP component: dataset dir + profiles -> training-data dir."""

from __future__ import annotations

import json
import os
from typing import Any

from seren.serengpt.labeling.merge import build_labels
from seren.serengpt.labeling.training import build_training_data


def run_labeling(
    data_dir: str | os.PathLike[str],
    profiles_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    base_model: str = "smollm2",
    human_csv: str | None = None,
    teacher: str = "none",
    teacher_kwargs: dict[str, Any] | None = None,
    teacher_max: int | None = None,
    test_frac: float = 0.25,
    seed: int = 0,
) -> dict[str, Any]:
    """Dataset dir + profiles parquet -> training-data dir (atomic) + merged labels; returns metrics."""
    from seren.data.dataset import load_dataset
    from seren.profiles.io import read_profiles
    from seren.profiles.text import load_tokenizer

    ds = load_dataset(data_dir)
    profiles = read_profiles(profiles_path)
    backend = None
    if teacher and teacher != "none":
        from seren.llm.backends import get_backend

        backend = get_backend(teacher, **(teacher_kwargs or {}))
    labels = build_labels(
        ds, profiles, teacher=backend, human_csv=human_csv or None, teacher_max=teacher_max, seed=seed
    )
    td = build_training_data(labels, profiles, ds.items, load_tokenizer(base_model), test_frac=test_frac, seed=seed)
    td.metrics = {**labels.attrs["metrics"], **td.metrics}
    budget = (profiles.attrs.get("metrics") or {}).get("token_budget")
    if budget:  # the prompt recipe travels with the training data into the model cards
        from seren.serengpt.recipe import prompt_recipe

        td.metrics["prompt"] = prompt_recipe(int(budget))
    td.labels = labels
    td.save(out_dir)
    return json.loads(json.dumps(td.metrics, default=str))
