"""SerenGPT training settings (budgets, LoRA and preference hyper-parameters) and the survey join.

The training DAG itself (profiles -> labels -> SFT -> IPO/DPO -> evaluation -> export -> validate
-> register) is defined once, in pipelines/serengpt_training/pipeline.py; `seren serengpt train`,
the demo and the quality benchmark run that pipeline (kfp.local), each component calling one
library function (`build_profiles_file`, `run_labeling`, `distill_artifact`, `align_artifact`,
`evaluate_artifacts`). `TrainConfig` holds the CPU budget measured for SmolLM2 and checks it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from seren.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Budget and hyper-parameters; the defaults are the CPU demo budget measured for SmolLM2."""

    base_model: str = "smollm2"
    loss: str = "ipo"  # final alignment loss: ipo | dpo
    compare_losses: tuple[str, ...] = ()  # extra alignment losses trained for the ablation only
    # data
    token_budget: int = 64  # profile tokens: the prompt length drives CPU cost
    label_frac: float = 0.4
    snapshots: int = 2
    test_frac: float = 0.25
    max_candidates: int = 10
    # SFT
    sft_steps: int = 60
    sft_lr: float = 5e-4
    max_examples: int | None = None
    # preference
    pref_steps: int = 30
    pref_lr: float = 2e-4
    pref_max_examples: int | None = None
    pref_batch_size: int | None = None  # pairs per step (None: batch_size); a pair costs ~4 forwards
    beta: float = 0.1
    pref_pairs: str = "all"  # all | onpolicy (only the pairs the SFT model gets wrong; seren.serengpt.onpolicy)
    # shared
    lora_r: int = 8
    lora_alpha: int = 16
    lora_layers: int | None = None  # LoRA on the top N decoder blocks only (None: all)
    batch_size: int = 8
    seed: int = 0
    ablation: bool = True
    eval_batch_size: int = 16
    threads: int | None = None  # torch intra-op threads (None: torch default)
    progress: bool = True
    # human labels (SERAL's collaborative data intervention): a Serendipity-2018 survey whose
    # judgments join the SFT/preference training set as source "human" (the most trusted)
    human: str | None = None
    human_movies: str | None = None  # MovieLens folder the survey joins (None: the dataset's items)
    human_definition: str = "any"
    extra: dict[str, Any] = field(default_factory=dict)

    def shared_kwargs(self) -> dict[str, Any]:
        """Settings the SFT and preference stages share."""
        return {
            "lora_r": self.lora_r,
            "lora_alpha": self.lora_alpha,
            "lora_layers": self.lora_layers,
            "seed": self.seed,
            "progress": self.progress,
        }

    def validate(self) -> TrainConfig:
        from seren.serengpt.align import LOSSES

        for loss in (self.loss, *self.compare_losses):
            if loss not in LOSSES:
                raise ConfigError(f"unknown preference loss {loss!r}", f"use one of: {', '.join(LOSSES)}")
        for name in ("sft_steps", "pref_steps", "batch_size", "lora_r", "token_budget", "max_candidates"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}", f"pass a positive {name}")
        if self.pref_pairs not in ("all", "onpolicy"):
            raise ConfigError(f"unknown pref_pairs {self.pref_pairs!r}", "use all or onpolicy")
        for name in ("max_examples", "pref_max_examples", "pref_batch_size"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be >= 1, got {v}", "pass a positive budget or omit it")
        return self


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


def _add_human(td: Any, ds: Any, tok: Any, cfg: TrainConfig) -> None:
    """`add_survey_examples` with a TrainConfig's survey, budget and seed."""
    assert cfg.human is not None
    add_survey_examples(td, ds, tok, cfg.human, cfg.human_movies, cfg.token_budget, cfg.human_definition, cfg.seed)
