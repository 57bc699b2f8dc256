"""Alignment: SFT model + preference pairs -> SerenGPT aligned with IPO (default) or DPO + metrics.

The reference policy is the SFT model; a fresh LoRA is trained on top and merged into a plain HF
dir with a model card.
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def align(
    training_data: Input[Dataset],
    sft_model: Input[Model],
    model: Output[Model],
    metrics: Output[Metrics],
    loss: str = "ipo",
    beta: float = 0.1,
    pref_steps: int = 30,
    pref_learning_rate: float = 0.0002,
    pref_max_examples: int = 0,
    pref_batch_size: int = 8,
    pref_pairs: str = "label",
    pref_min_confidence: float = 0.0,
    lora_r: int = 8,
    lora_alpha: int = 16,
    lora_layers: int = 0,
    seed: int = 0,
):
    """The preference subset of seren.serengpt.config.LoraTrainingConfig (its fields, defaults and
    checks): loss: ipo | dpo; pref_max_examples: 0 = every preference pair; pref_pairs: label (every
    labelled pair) | onpolicy (only those the SFT model gets wrong; none left: the SFT model passes
    through untrained and the alignment gate keeps it); lora_layers: LoRA on the top N decoder blocks
    only (0 = all)."""
    from seren.serengpt.align import align_artifact
    from seren.serengpt.config import LoraTrainingConfig

    cfg = LoraTrainingConfig.from_params(locals())
    stats = align_artifact(training_data.path, sft_model.path, model.path, **cfg.pref_kwargs())
    model.metadata.update({"stage": f"sft+{loss}" if stats.get("steps") else "sft"})  # nothing trained: SFT
    for key, value in stats.items():
        metrics.log_metric(key, value)
