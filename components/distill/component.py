"""Distillation: training data -> SerenGPT student after LoRA SFT (merged, plain HF dir) + metrics.

The student learns to answer the shared serendipity prompt with the labels' Yes/No (and teacher
rationales); loss on the completion only; fp32 CPU under a step/example budget.
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def distill(
    training_data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    base_model: str = "smollm2",
    sft_method: str = "lora",
    sft_steps: int = 60,
    sft_learning_rate: float = 0.0005,
    max_examples: int = 0,
    batch_size: int = 8,
    lora_r: int = 8,
    lora_alpha: int = 16,
    lora_layers: int = 0,
    seed: int = 0,
):
    """The SFT subset of seren.serengpt.config.LoraTrainingConfig (its fields, defaults and checks):
    base_model: 'smollm2' or a HF causal-LM dir; sft_method: lora (LoRA SFT) | head (the Yes/No answer
    head only, seren.serengpt.head); max_examples: 0 = every SFT example; lora_layers: LoRA
    on the top N decoder blocks only (0 = all; fewer is cheaper on CPU)."""
    from seren.serengpt.config import LoraTrainingConfig
    from seren.serengpt.sft import distill_artifact

    cfg = LoraTrainingConfig.from_params(locals())
    stats = distill_artifact(training_data.path, model.path, **cfg.sft_kwargs())
    model.metadata.update({"stage": "sft", "base_model": base_model})
    for key, value in stats.items():
        metrics.log_metric(key, value)
