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
    survey: str | None = None,
    survey_movies: str | None = None,
) -> dict[str, Any]:
    """Dataset dir + profiles parquet -> training-data dir (atomic) + merged labels; returns metrics.

    `survey` (a Serendipity-2018 folder; its movieIds join `survey_movies` or the dataset) adds the
    survey's judgments to the training tables as source "human"."""
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
    tok = load_tokenizer(base_model)
    td = build_training_data(labels, profiles, ds.items, tok, test_frac=test_frac, seed=seed)
    td.metrics = {**labels.attrs["metrics"], **td.metrics}
    budget = (profiles.attrs.get("metrics") or {}).get("token_budget")
    if survey:
        from seren.serengpt.train import add_survey_examples

        add_survey_examples(td, ds, tok, survey, survey_movies or None, int(budget or 64), seed=seed)
    if budget:  # the prompt recipe travels with the training data into the model cards
        from seren.serengpt.recipe import prompt_recipe

        td.metrics["prompt"] = prompt_recipe(int(budget))
    td.labels = labels
    td.save(out_dir)
    return json.loads(json.dumps(td.metrics, default=str))
