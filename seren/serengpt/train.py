"""SerenGPT training: the survey join of the labeling step.

The training DAG itself (profiles -> labels -> SFT -> IPO/DPO -> evaluation -> export -> validate
-> register) is defined once, in pipelines/serengpt_training/pipeline.py; `seren serengpt train`,
the demo and the quality benchmark run that pipeline (kfp.local), each component calling one
library function (`build_profiles_file`, `run_labeling`, `distill_artifact`, `align_artifact`,
`evaluate_artifacts`). The training knobs (budgets, LoRA and preference hyper-parameters, the CPU
budget measured for SmolLM2) are defined once in seren.serengpt.config.LoraTrainingConfig.
"""

from __future__ import annotations

from typing import Any


def add_survey_examples(
    td: Any,
    ds: Any,
    tok: Any,
    survey_dir: str,
    movies_dir: str | None = None,
    token_budget: int = 64,
    definition: str = "any",
    seed: int = 0,
) -> None:
    """Survey judgments (leave-one-out prompts) join the training tables as source "human" (SERAL's
    collaborative data intervention); the labeling step calls this when the pipeline gets a survey."""
    import pandas as pd

    from seren.data.movielens import load_movielens
    from seren.data.survey import load_survey
    from seren.serengpt.human import balance_oversample, human_candidates, human_examples
    from seren.serengpt.labeling import PREF_COLUMNS, SFT_COLUMNS

    survey = load_survey(survey_dir, load_movielens(movies_dir) if movies_dir else ds, definition)
    ex = balance_oversample(human_examples(human_candidates(survey, tok, token_budget), tok), seed)
    td.sft_train = pd.concat([td.sft_train, ex[SFT_COLUMNS]], ignore_index=True)
    td.pref_train = pd.concat([td.pref_train, ex[PREF_COLUMNS]], ignore_index=True)
    td.metrics |= {
        "train_source_human": int(len(ex)),
        "human_judgments": survey.report["n_labels"],
        "human_users": survey.report["n_users"],
        "human_without_movie": survey.report["n_without_movie"],
    }
