"""LoraTrainingConfig: bad budgets fail before anything is loaded; each stage gets its settings."""

from __future__ import annotations

import pytest

from seren.errors import ConfigError
from seren.serengpt.config import LoraTrainingConfig


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ({"sft_steps": 0}, "sft_steps must be >= 1 (got 0)"),
        ({"pref_batch_size": 0}, "pref_batch_size must be >= 1 (got 0)"),
        ({"max_examples": -1}, "max_examples must be >= 0 (got -1)"),
        ({"token_budget": 4}, "token_budget must be >= 8 (got 4)"),
        ({"sft_learning_rate": 0.0}, "sft_learning_rate must be > 0.0 (got 0.0)"),
        ({"lora_r": 0}, "lora_r must be >= 1 (got 0)"),
        ({"lora_rank": 4}, "unknown LoRA training setting 'lora_rank'"),
        ({"pref_pairs": "foo"}, "pref_pairs must be 'label' or 'onpolicy' (got 'foo')"),
        ({"pref_min_confidence": 1.5}, "pref_min_confidence must be <= 1.0 (got 1.5)"),
    ],
)
def test_bad_budgets_are_one_line_config_errors(bad: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        LoraTrainingConfig(**bad)
    line = err.value.line()
    assert needle in line and "Fix:" in line and "\n" not in line


def test_stage_kwargs_map_the_fields_and_zero_means_no_cap() -> None:
    cfg = LoraTrainingConfig(lora_layers=8, seed=3, lora_r=4, sft_steps=5, pref_max_examples=12, loss="dpo")
    lora = {"lora_r": 4, "lora_alpha": 16, "lora_layers": 8, "seed": 3, "progress": False}
    assert cfg.sft_kwargs() == {
        "base_model": "smollm2",
        "method": "lora",
        "max_steps": 5,
        "max_examples": None,
        "learning_rate": 0.0005,
        "batch_size": 8,
        **lora,
    }
    assert cfg.pref_kwargs() == {
        "loss": "dpo",
        "beta": 0.1,
        "max_steps": 30,
        "max_examples": 12,
        "learning_rate": 0.0002,
        "batch_size": 8,
        "pairs": "label",
        "min_confidence": 0.0,
        **lora,
    }
    assert LoraTrainingConfig(pref_pairs="onpolicy", pref_min_confidence=0.5).pref_kwargs()["pairs"] == "onpolicy"
    assert LoraTrainingConfig(pref_min_confidence=0.5).pref_kwargs()["min_confidence"] == 0.5
    assert LoraTrainingConfig().sft_kwargs()["lora_layers"] is None  # 0 = LoRA on every block
    assert LoraTrainingConfig(seed=None, max_examples=None).model_dump() == LoraTrainingConfig().model_dump()


def test_the_loss_choices_are_the_trainers_losses() -> None:
    from typing import get_args

    from seren.serengpt.align import LOSSES

    assert set(get_args(LoraTrainingConfig.model_fields["loss"].annotation)) == set(LOSSES)


def test_the_pair_choices_are_the_trainers_choices() -> None:
    from typing import get_args

    from seren.serengpt.align import PAIRS

    assert set(get_args(LoraTrainingConfig.model_fields["pref_pairs"].annotation)) == set(PAIRS)
