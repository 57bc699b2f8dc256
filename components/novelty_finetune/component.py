"""Novelty fine-tune: LoRA SFT of the base model on (two clusters -> novel cluster) prompts."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Model, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def novelty_finetune(
    transitions: Input[Artifact],
    clusters: Input[Artifact],
    model: Output[Model],
    metrics: Output[Metrics],
    base_model: str = "smollm2",
    max_steps: int = 200,
    learning_rate: float = 0.001,
    lora_r: int = 16,
    batch_size: int = 16,
    seed: int = 0,
):
    """base_model: 'smollm2' or a Hugging Face causal-LM directory; the merged model is in model/model."""
    from seren.exploration.workflow import run_novelty_finetune

    out = run_novelty_finetune(
        transitions.path,
        clusters.path,
        model.path,
        base_model=base_model,
        max_steps=max_steps,
        learning_rate=learning_rate,
        lora_r=lora_r,
        batch_size=batch_size,
        seed=seed,
    )
    for key, value in out.items():
        metrics.log_metric(key, value)
