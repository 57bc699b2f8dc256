"""SerenGPT stage 1 of distillation: supervised fine-tuning with LoRA on (prompt, completion) pairs.

The teacher/behaviour/human labels become "Yes"/"No" completions after the shared prompt; trl's
SFTTrainer trains on prompt-completion data with the loss on the completion only, so the student
learns the answer, not the prompt. Everything runs fp32 on CPU (bf16 is orders of magnitude slower
here), under a step/example budget so a demo finishes in minutes.

A stage directory holds `checkpoints/` (LoRA adapter + optimizer state every few steps) and, when
training ends, `model/`: the LoRA merged into a plain Hugging Face causal-LM directory (tokenizer
included, no peft needed to load it) written atomically, with a model card. Re-running the same
stage with the same data and settings resumes from the last checkpoint, or returns the finished
model without training again.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from seren.errors import DataError
from seren.io import atomic_dir
from seren.llm.card import (  # noqa: F401 - re-exported: callers import the card helpers from here too
    CARD_JSON,
    CARD_MD,
    read_model_card,
    render_card,
    update_model_card,
    write_model_card,
)
from seren.metrics import flatten_metrics
from seren.serengpt.stage import (  # noqa: F401 - re-exported: the stage plumbing moved to stage.py
    CHECKPOINT_SUBDIR,
    MODEL_SUBDIR,
    RUN_FILE,
    StageRun,
    balanced_sample,
    base_training_args,
    block_linear_names,
    budget_params,
    check_budget,
    compact_logprobs,
    dataset_fingerprint,
    finish_stage,
    finish_stage_dir,
    fit,
    load_trainable,
    lora_config,
    lora_target,
    loss_summary,
    open_stage,
    prepare_stage_dir,
    progress_callback,
    quiet_callbacks,
    quiet_transformers,
    require_columns,
    run_fingerprint,
    save_merged,
    sft_card,
    stage_training_args,
    token_lengths,
    utc_now,
)

log = logging.getLogger(__name__)


def train_sft(
    base_model: str | os.PathLike[str],
    train_df: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    max_steps: int = 60,
    max_examples: int | None = None,
    lora_r: int = 8,
    lora_alpha: int = 16,
    learning_rate: float = 5e-4,
    batch_size: int = 8,
    seed: int = 0,
    save_steps: int | None = None,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
    lora_layers: int | None = None,
    prompt: dict[str, Any] | None = None,
    hidden_cache: bool = True,
    method: str = "lora",
) -> Path:
    """LoRA SFT with completion-only loss; returns the merged model dir (`out_dir/model`).

    `method="head"` fits the answer head only instead (seren.serengpt.head: the step, LoRA and
    learning-rate settings do not apply).

    With `lora_layers` (LoRA on the top blocks only) and `hidden_cache`, the frozen lower blocks
    run once per example and training runs the top blocks from their cached output
    (seren.serengpt.cached: same loss curve, fewer FLOPs per step).

    `prompt` is the prompt recipe of the training data (`seren.serengpt.recipe`), recorded in
    the card so every entry point rebuilds the same prompt.

    `train_df` has `prompt` and `completion` (and `label` for balanced subsampling) as built by
    `seren.serengpt.labeling.build_training_data`.
    """
    from datasets import Dataset as HFDataset
    from trl import SFTConfig, SFTTrainer

    from seren.llm.base import resolve_base_model

    if method == "head":
        from seren.serengpt.head import train_head

        return train_head(base_model, train_df, out_dir, max_examples, seed, progress, prompt)
    if method != "lora":
        raise DataError(f"unknown SFT method {method!r}", "use lora or head")
    require_columns(train_df, ["prompt", "completion"], "SFT training")
    params = budget_params(max_steps, max_examples, lora_r, lora_alpha, learning_rate, batch_size, seed, lora_layers)
    base_path = resolve_base_model(base_model)
    data = balanced_sample(train_df, max_examples, seed)
    stage = open_stage(out_dir, params, data, ["prompt", "completion"], base_path)
    if stage.done is not None:
        log.info("SFT model for this data and settings already exists at %s", stage.done)
        return stage.done

    model, tok = load_trainable(base_path, seed)
    lengths = token_lengths(tok, [p + c for p, c in zip(data["prompt"], data["completion"], strict=True)])
    max_length = max(lengths) + 2  # + EOS; never truncate the answer away
    from seren.serengpt.cached import fit_cached, use_cache

    if use_cache(model, tok, data, lora_layers, hidden_cache):
        # frozen lower blocks run once per example (seren.serengpt.cached); no mid-run checkpoints
        trainer, seconds = fit_cached(model, tok, data, params, lora_config(lora_r, lora_alpha, model, lora_layers))
    else:
        args = SFTConfig(
            **stage_training_args(stage, params, progress, save_steps),
            max_length=max_length,
            completion_only_loss=True,
            packing=False,
            dataset_num_proc=None,
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=HFDataset.from_pandas(data[["prompt", "completion"]], preserve_index=False),
            processing_class=tok,
            peft_config=lora_config(lora_r, lora_alpha, model, lora_layers),
            callbacks=[*callbacks, progress_callback("sft")],
        )
        seconds = fit(trainer, stage, progress)
    labels = data["label"] if "label" in data.columns else None
    card = sft_card(base_model, base_path, data, train_df)
    card["data"].update(
        {
            "positive_share": float((labels > 0).mean()) if labels is not None else None,
            "max_length_tokens": int(max_length),
            "mean_length_tokens": float(sum(lengths) / len(lengths)),
        }
    )
    card |= {
        "hyperparameters": {
            **params,
            "loss": "completion-only NLL",
            "lora_target": lora_target(lora_layers),
            "dtype": "float32",
        },
        "train_metrics": {
            **loss_summary(trainer.state.log_history),
            "steps": int(trainer.state.global_step),
            "resumed_from": Path(stage.resume).name if stage.resume else None,
            "seconds": round(seconds, 1),
            **getattr(trainer, "cache_info", {}),
        },
    }
    if prompt:
        card["prompt"] = prompt
    return finish_stage(trainer, tok, stage, card)


# ------------------------------------------------------------------ KFP component entry points


def numeric_metrics(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Flatten a card section into the numeric scalars a KFP Metrics artifact can log (seren.metrics' scheme)."""
    return flatten_metrics(d, prefix)


def publish_model(model_dir: Path, target: str | os.PathLike[str]) -> Path:
    """Move a finished stage's merged model to an artifact path (same filesystem: one rename)."""
    target = Path(target)
    if target.exists():
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(model_dir, target)
    except OSError:  # another filesystem: copy into a temp dir beside the target, then swap
        with atomic_dir(target) as tmp:
            shutil.copytree(model_dir, tmp, dirs_exist_ok=True)
    return target


def train_and_publish(train: Callable[[Path], Path], model_out: str | os.PathLike[str]) -> dict[str, Any]:
    """Train into `<model_out>.work` (resumable there), move the merged model to `model_out`; its card."""
    work = Path(f"{model_out}.work")
    model_dir = train(work)
    card = read_model_card(model_dir)
    publish_model(model_dir, model_out)
    shutil.rmtree(work, ignore_errors=True)
    return card


def distill_artifact(
    training_data_dir: str | os.PathLike[str],
    model_out: str | os.PathLike[str],
    base_model: str = "smollm2",
    **params: Any,
) -> dict[str, float]:
    """Training-data dir -> merged SFT model at `model_out`; numeric metrics for the component."""
    from seren.serengpt.labeling import TrainingData

    td = TrainingData.load(training_data_dir)
    params.setdefault("prompt", td.metrics.get("prompt"))
    card = train_and_publish(lambda work: train_sft(base_model, td.sft_train, work, **params), model_out)
    return numeric_metrics({"data": card.get("data", {}), **card.get("train_metrics", {})})
