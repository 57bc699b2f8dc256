"""LoRA training's settings, defined once.

`LoraTrainingConfig` is the one definition of the serengpt_training pipeline's training knobs (base
model, profile token budget, SFT and IPO/DPO budgets, which preference pairs, LoRA shape, seed): the distill and align
components' inputs (components/distill, components/align; each takes its stage's subset), the
pipeline's parameters (pipelines/serengpt_training) and the `seren serengpt train` options (generated
from the fields, seren/commands/_model_options.py) carry exactly these fields with these defaults
(tests/serengpt/test_config_once.py checks it). The defaults are the CPU budget measured for SmolLM2.
KFP parameters have no None, so "every example" / "every block" is 0.

Validation lives here: ranges and choices fail at construction with one line
(`error: invalid LoRA training setting: ... Fix: ...`, seren.config.StageConfig).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from seren.config import StageConfig
from seren.config import option as _opt

# the library's trainers: seren.serengpt.sft.train_sft / seren.serengpt.align.train_preference
SFT_FIELDS = (
    "base_model",
    "sft_method",
    "sft_steps",
    "sft_learning_rate",
    "max_examples",
    "batch_size",
    "lora_r",
    "lora_alpha",
    "lora_layers",
    "seed",
)
PREF_FIELDS = (
    "loss",
    "beta",
    "pref_steps",
    "pref_learning_rate",
    "pref_max_examples",
    "pref_batch_size",
    "pref_pairs",
    "pref_min_confidence",
    "lora_r",
    "lora_alpha",
    "lora_layers",
    "seed",
)


class LoraTrainingConfig(StageConfig):
    """SerenGPT's LoRA SFT + preference training settings (see the module docstring)."""

    stage: ClassVar[str] = "LoRA training"

    base_model: str = _opt("smollm2", "'smollm2' or a Hugging Face causal-LM directory.")
    token_budget: int = _opt(64, "Profile token budget (prompt length; drives CPU cost).", ge=8)
    sft_method: Literal["lora", "head"] = _opt(
        "lora",
        "How the judge learns its labels: lora (LoRA SFT) | head (only the Yes/No answer head, by "
        "user-cross-validated logistic regression on the frozen model; for a few hundred human labels; "
        "the SFT step/LoRA settings do not apply).",
    )
    sft_steps: int = _opt(60, "SFT optimizer steps.", "--max-steps", ge=1)
    sft_learning_rate: float = _opt(0.0005, "SFT learning rate.", "--sft-lr", gt=0.0)
    max_examples: int = _opt(0, "Cap on SFT examples (0: every example).", ge=0)
    batch_size: int = _opt(8, "SFT examples per step.", ge=1)
    loss: Literal["ipo", "dpo"] = _opt("ipo", "Preference loss of the aligned model: ipo | dpo.")
    beta: float = _opt(0.1, "IPO/DPO beta.", gt=0.0)
    pref_steps: int = _opt(30, "Preference (IPO/DPO) optimizer steps.", ge=1)
    pref_learning_rate: float = _opt(0.0002, "Preference learning rate.", "--pref-lr", gt=0.0)
    pref_max_examples: int = _opt(0, "Cap on preference pairs (0: every pair).", ge=0)
    pref_batch_size: int = _opt(8, "Preference pairs per step (a pair costs ~4 forwards).", ge=1)
    pref_pairs: Literal["label", "onpolicy"] = _opt(
        "label",
        "Which preference pairs the aligned model trains on: every labelled pair (label), or only those "
        "the SFT model gets wrong (onpolicy).",
    )
    pref_min_confidence: float = _opt(
        0.0, "Drop preference pairs whose label confidence is below this (0: keep all).", ge=0.0, le=1.0
    )
    lora_r: int = _opt(8, "LoRA rank.", ge=1)
    lora_alpha: int = _opt(16, "LoRA alpha (scale = alpha / r).", ge=1)
    lora_layers: int = _opt(0, "LoRA on the top N decoder blocks only (0: all; fewer is cheaper on CPU).", ge=0)
    seed: int = _opt(0, "Seed for sampling, splits and training.")

    def sft_kwargs(self, progress: bool = False) -> dict[str, Any]:
        """Keyword arguments of seren.serengpt.sft.distill_artifact (0 budgets -> None: no cap)."""
        return {
            "base_model": self.base_model,
            "method": self.sft_method,
            "max_steps": self.sft_steps,
            "max_examples": self.max_examples or None,
            "learning_rate": self.sft_learning_rate,
            "batch_size": self.batch_size,
            **self._lora(progress),
        }

    def pref_kwargs(self, progress: bool = False) -> dict[str, Any]:
        """Keyword arguments of seren.serengpt.align.align_artifact."""
        return {
            "loss": self.loss,
            "beta": self.beta,
            "max_steps": self.pref_steps,
            "max_examples": self.pref_max_examples or None,
            "learning_rate": self.pref_learning_rate,
            "batch_size": self.pref_batch_size,
            "pairs": self.pref_pairs,
            "min_confidence": self.pref_min_confidence,
            **self._lora(progress),
        }

    def _lora(self, progress: bool) -> dict[str, Any]:
        return {
            "lora_r": self.lora_r,
            "lora_alpha": self.lora_alpha,
            "lora_layers": self.lora_layers or None,
            "seed": self.seed,
            "progress": progress,
        }
