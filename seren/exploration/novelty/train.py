"""Training the novelty LLM: LoRA SFT on the transition prompts through the project's one SFT
trainer, with a linear learning-rate decay, and the cluster set saved beside the model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from seren.errors import ConfigError, DataError
from seren.exploration.novelty.model import CLUSTERS_FILE
from seren.exploration.transitions import Transitions
from seren.io import write_json


def linear_decay_lambda(warmup: int, total: int) -> Any:
    """Step -> LR factor: linear warm-up to 1, then linear decay to 0 at `total`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def linear_decay_callback() -> Any:
    """A TrainerCallback that swaps the shared trainer's constant schedule for a linear decay
    (the shared trainer's arguments stay the SerenGPT stages')."""
    from transformers import TrainerCallback

    class LinearDecay(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, lr_scheduler: Any = None, **kw: Any) -> None:
            if lr_scheduler is not None and hasattr(lr_scheduler, "lr_lambdas"):
                fn = linear_decay_lambda(int(args.warmup_steps), int(args.max_steps))
                lr_scheduler.lr_lambdas = [fn] * len(lr_scheduler.lr_lambdas)

    return LinearDecay()


def train_novelty(
    base_model: str | os.PathLike[str],
    transitions: Transitions,
    descriptions: dict[str, str],
    out_dir: str | os.PathLike[str],
    max_steps: int = 200,
    max_repeat: int = 4,
    lora_r: int = 16,
    lora_alpha: int = 32,
    learning_rate: float = 1e-3,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = False,
    lora_layers: int | None = None,
    lr_schedule: str = "linear",
) -> Path:
    """LoRA SFT on the transition prompts (the shared trainer); saves the cluster set beside the
    model so serving decodes into exactly the clusters it was trained on.

    `lr_schedule="linear"` decays the learning rate to 0 after the warm-up: the targets are samples
    of where users went next (many per pair), so at a constant rate the last steps' few samples
    decide the final ranking; decaying averages over the whole run. "constant" keeps the shared
    trainer's constant-with-warm-up rate."""
    if lr_schedule not in ("linear", "constant"):
        raise ConfigError(f"unknown lr_schedule {lr_schedule!r}", "use 'linear' or 'constant'")
    from seren.serengpt.sft import train_sft, update_model_card

    frame = transitions.sft_frame(max_repeat=max_repeat)
    unknown = sorted((set(frame["c1"]) | set(frame["c2"]) | set(frame["c_next"])) - set(descriptions))
    if unknown:
        raise DataError(
            f"transitions reference {len(unknown)} unknown cluster(s) (e.g. {unknown[0]!r})",
            "build transitions and the model from the same clusters",
        )
    model_dir = train_sft(
        base_model,
        frame[["prompt", "completion"]],
        out_dir,
        max_steps=max_steps,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        learning_rate=learning_rate,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
        lora_layers=lora_layers,
        callbacks=[linear_decay_callback()] if lr_schedule == "linear" else [],
    )
    write_json(Path(model_dir) / CLUSTERS_FILE, {"descriptions": descriptions})
    update_model_card(
        model_dir,
        stage="novelty",
        task="interest exploration: last two clusters -> novel next cluster",
        n_clusters=len(descriptions),
    )
    return Path(model_dir)


# ---------------------------------------------------------------------------------------------
# evaluation: gates + baselines
