"""TrainConfig: budgets are validated before anything is loaded; both stages get the shared settings."""

from __future__ import annotations

import pytest

from seren.errors import ConfigError
from seren.serengpt.train import TrainConfig


@pytest.mark.parametrize(
    "bad",
    [{"sft_steps": 0}, {"pref_batch_size": 0}, {"max_examples": 0}, {"loss": "ppo"}, {"compare_losses": ("kto",)}],
)
def test_bad_budgets_are_config_errors(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad).validate()


def test_shared_kwargs_carry_lora_layers_and_seed():
    cfg = TrainConfig(lora_layers=8, seed=3, lora_r=4, progress=False).validate()
    assert cfg.shared_kwargs() == {"lora_r": 4, "lora_alpha": 16, "lora_layers": 8, "seed": 3, "progress": False}
    assert TrainConfig(pref_batch_size=None).validate().pref_batch_size is None
