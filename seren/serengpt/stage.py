"""The plumbing every SerenGPT training stage shares (SFT here, IPO/DPO in `align.py`, the novelty LLM).

A stage directory, its resume fingerprint and checkpoints, the LoRA target (top N blocks), the step
budget, trainer arguments, progress callbacks and the merged-model write: one definition, so the
stages differ only in their data and loss. Split out of `sft.py`, which re-exports these names.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from seren.errors import DataError
from seren.io import atomic_dir, write_json
from seren.llm.card import (
    CARD_JSON,
    write_model_card,
)
from seren.resume import fingerprint, frame_fingerprint

log = logging.getLogger(__name__)


MODEL_SUBDIR = "model"
CHECKPOINT_SUBDIR = "checkpoints"
RUN_FILE = "run.json"


# ------------------------------------------------------------------ shared stage plumbing


dataset_fingerprint = frame_fingerprint  # the old name (seren.resume is the one definition)


def run_fingerprint(params: dict[str, Any], data_fp: str, base: str) -> str:
    """A training step's fingerprint: its settings, its data and its parent model (`seren.resume`)."""
    return fingerprint({"params": params, "data": data_fp, "base": base})


def prepare_stage_dir(out_dir: Path, fingerprint: str) -> tuple[Path | None, str | None]:
    """(finished model dir or None, checkpoint to resume from or None) for this fingerprint.

    A run with a different fingerprint (other data or settings) starts over: its stale
    checkpoints are removed, while a previously finished model stays until the new one replaces it
    atomically, so a failed run never destroys the last good model.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    run_file = out_dir / RUN_FILE
    prev = json.loads(run_file.read_text()) if run_file.is_file() else {}
    ckpt_dir = out_dir / CHECKPOINT_SUBDIR
    model_dir = out_dir / MODEL_SUBDIR
    if prev.get("fingerprint") != fingerprint:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        write_json(run_file, {"fingerprint": fingerprint, "started": utc_now(), "finished": None})
        return None, None
    if prev.get("finished") and (model_dir / CARD_JSON).is_file() and (model_dir / "config.json").is_file():
        return model_dir, None
    if ckpt_dir.is_dir():
        from transformers.trainer_utils import get_last_checkpoint

        return None, get_last_checkpoint(str(ckpt_dir))
    return None, None


def finish_stage_dir(out_dir: Path, fingerprint: str) -> None:
    write_json(out_dir / RUN_FILE, {"fingerprint": fingerprint, "finished": utc_now(), "model": MODEL_SUBDIR})


def balanced_sample(df: pd.DataFrame, max_examples: int | None, seed: int, label_col: str = "label") -> pd.DataFrame:
    """At most `max_examples` rows, as close to half positive as the data allows, shuffled."""
    if max_examples is not None and max_examples < 1:
        raise DataError(f"max_examples must be >= 1, got {max_examples}", "pass a positive budget or omit it")
    if max_examples is None or len(df) <= max_examples:
        return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    if label_col not in df.columns:
        return df.sample(n=max_examples, random_state=seed).reset_index(drop=True)
    pos, neg = df[df[label_col] > 0], df[df[label_col] <= 0]
    n_pos = min(len(pos), max(max_examples // 2, max_examples - len(neg)))
    n_neg = min(len(neg), max_examples - n_pos)
    out = pd.concat([pos.sample(n=n_pos, random_state=seed), neg.sample(n=n_neg, random_state=seed)])
    return out.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if df is None or len(df) == 0:
        raise DataError(
            f"the {what} set is empty", "build training data with more labelled users (or a larger dataset)"
        )
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"the {what} set lacks column(s) {', '.join(missing)}", "pass the frame built by build_training_data"
        )
    blank = df[list(columns)].astype(str).apply(lambda s: s.str.strip().eq("")).any(axis=1)
    if blank.any():
        raise DataError(f"the {what} set has {int(blank.sum())} row(s) with empty text", "drop or fix those rows")


def check_budget(max_steps: int, batch_size: int, learning_rate: float, lora_r: int) -> None:
    """Reject impossible budgets before anything is loaded or written."""
    for name, v in (("max_steps", max_steps), ("batch_size", batch_size), ("lora_r", lora_r)):
        if int(v) < 1:
            raise DataError(f"{name} must be >= 1, got {v}", f"pass a positive {name}")
    if not learning_rate > 0:
        raise DataError(f"learning_rate must be > 0, got {learning_rate}", "pass e.g. 5e-4")


def base_training_args(
    output_dir: Path, max_steps: int, batch_size: int, learning_rate: float, seed: int, progress: bool, save_steps: int
) -> dict[str, Any]:
    """TrainingArguments shared by the SFT and preference stages: fp32 CPU, no hub, small checkpoints."""
    import torch

    return {
        "output_dir": str(output_dir),
        "max_steps": int(max_steps),
        "per_device_train_batch_size": int(batch_size),
        "gradient_accumulation_steps": 1,
        "learning_rate": float(learning_rate),
        "lr_scheduler_type": "constant_with_warmup",
        "warmup_steps": max(1, max_steps // 10),
        "weight_decay": 0.0,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": int(save_steps),
        "save_total_limit": 1,
        "report_to": "none",
        "seed": int(seed),
        "data_seed": int(seed),
        "bf16": False,
        "fp16": False,
        "use_cpu": not torch.cuda.is_available(),
        "activation_checkpointing": False,  # recomputation only pays off when memory is short
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": False,
        "disable_tqdm": not progress,
        "remove_unused_columns": True,
    }


def lora_config(r: int, alpha: int, model: Any = None, top_layers: int | None = None, dropout: float = 0.0) -> Any:
    """LoRA on every linear layer of the decoder, or only of its top `top_layers` blocks.

    Adapting only the top blocks keeps the backward pass out of the frozen lower blocks: on CPU a
    step costs ~half, for a task (reading a judgment out of features the base already computes)
    where the top blocks carry most of the gain.
    """
    from peft import LoraConfig

    target: str | list[str] = "all-linear"
    kw: dict[str, Any] = {}
    if top_layers:
        n = int(getattr(model.config, "num_hidden_layers", 0)) if model is not None else 0
        if n and top_layers < n:
            # peft only restricts layers for an explicit module list, so name the blocks' linears
            target = block_linear_names(model)
            kw = {"layers_to_transform": list(range(n - int(top_layers), n)), "layers_pattern": "layers"}
    return LoraConfig(
        r=int(r),
        lora_alpha=int(alpha),
        lora_dropout=float(dropout),
        target_modules=target,
        task_type="CAUSAL_LM",
        **kw,
    )


def lora_target(top_layers: int | None) -> str:
    return f"all-linear in the top {top_layers} blocks" if top_layers else "all-linear"


def block_linear_names(model: Any) -> list[str]:
    """Leaf names of the linear layers inside the decoder blocks (`...layers.<i>.<...>.<name>`)."""
    import torch

    names = {
        name.rsplit(".", 1)[-1]
        for name, mod in model.named_modules()
        if isinstance(mod, torch.nn.Linear) and re.search(r"\.layers\.\d+\.", name)
    }
    if not names:
        raise DataError("the model has no linear layers inside `layers.<i>` blocks", "omit lora_layers for it")
    return sorted(names)


def loss_summary(log_history: list[dict[str, Any]], key: str = "loss") -> dict[str, Any]:
    """First/last/mean-of-window training loss from the trainer's log (what the card and tests read)."""
    curve = [float(e[key]) for e in log_history if key in e and "step" in e]
    if not curve:
        return {}
    w = max(1, len(curve) // 4)
    return {
        f"{key}_first": curve[0],
        f"{key}_last": curve[-1],
        f"{key}_first_quarter": sum(curve[:w]) / w,
        f"{key}_last_quarter": sum(curve[-w:]) / w,
        f"{key}_curve": [round(x, 5) for x in curve],
    }


def save_merged(trainer: Any, tokenizer: Any, model_dir: Path, card: dict[str, Any]) -> Path:
    """Merge the LoRA into the base weights and write a plain HF dir (no adapter files), atomically."""
    merged = trainer.model.merge_and_unload() if hasattr(trainer.model, "merge_and_unload") else trainer.model
    merged.eval()
    if hasattr(merged.config, "use_cache"):
        merged.config.use_cache = True
    with atomic_dir(model_dir) as tmp:
        merged.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        write_model_card(tmp, card)
    return model_dir


@contextlib.contextmanager
def compact_logprobs() -> Iterator[None]:
    """Score only the positions that carry a label in trl's fused LM head, on CPU too.

    trl 1.16 projects hidden states through the LM head in tiles and, off CUDA/XPU, does so for
    *every* position (to keep tile shapes fixed for Neuron's compiler). Our completions are 2-3
    tokens after a ~200-token prompt, so that is ~100x more vocabulary projections than the loss
    uses, and dominates a CPU step. trl's compact path (used on CUDA) gathers the labelled
    positions first and gives identical log-probs; this selects it for the duration of training.
    """
    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton
    trl_utils._use_triton = lambda device: True
    try:
        yield
    finally:
        trl_utils._use_triton = original


def quiet_callbacks(trainer: Any, progress: bool) -> None:
    """Keep stdout clean (it may carry --json): no per-step log dicts, only the tqdm bar on stderr."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class BarOnly(ProgressCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            return None

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if progress:
        trainer.add_callback(BarOnly())


def progress_callback(stage: str) -> Any:
    """Trainer callback: a `seren.progress` event per logged step (stage, step/total, loss, ETA)."""
    from transformers import TrainerCallback

    from seren import progress

    class ProgressEvents(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if logs and "loss" in logs:
                progress.emit(stage, int(state.global_step), int(state.max_steps), loss=float(logs["loss"]))

    return ProgressEvents()


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sft_card(base_model: Any, base_path: Path, data: pd.DataFrame, train_df: pd.DataFrame) -> dict[str, Any]:
    """What every SFT-stage card starts with (LoRA or head fit): where it came from and on how much data."""
    from seren import __version__

    return {
        "stage": "sft",
        "base_model": str(base_model),
        "base_model_path": str(base_path),
        "created": utc_now(),
        "seren_version": __version__,
        "data": {
            "n_train": int(len(data)),
            "n_available": int(len(train_df)),
            "n_users": int(data["user_id"].nunique()) if "user_id" in data.columns else None,
        },
    }


def quiet_transformers() -> None:
    """Trainer warnings about unused columns/tokenizers/deprecations are noise for a CLI user; keep errors."""
    import warnings

    import transformers

    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
    for name in ("trl", "peft", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)


@dataclass
class StageRun:
    """One resumable stage directory: its run fingerprint, a finished model or a checkpoint to resume."""

    out_dir: Path
    fingerprint: str
    done: Path | None
    resume: str | None


def budget_params(
    max_steps: int,
    max_examples: int | None,
    lora_r: int,
    lora_alpha: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
    lora_layers: int | None,
) -> dict[str, Any]:
    """The LoRA training budget both stages fingerprint and record on the model card."""
    check_budget(max_steps, batch_size, learning_rate, lora_r)
    return {
        "max_steps": max_steps,
        "max_examples": max_examples,
        "lora_r": lora_r,
        "lora_alpha": lora_alpha,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "seed": seed,
        "lora_layers": lora_layers,
    }


def open_stage(
    out_dir: str | os.PathLike[str], params: dict[str, Any], data: pd.DataFrame, columns: Sequence[str], parent: Path
) -> StageRun:
    """Fingerprint (settings, data, parent model) and find what this stage dir already holds."""
    out = Path(out_dir)
    fp = run_fingerprint(params, frame_fingerprint(data, columns), str(parent))
    done, resume = prepare_stage_dir(out, fp)
    return StageRun(out, fp, done, resume)


def load_trainable(path: Path, seed: int) -> tuple[Any, Any]:
    """(model in train mode, tokenizer), with the seed set for the LoRA initialisation that follows."""
    import torch

    from seren.llm.base import load_causal_lm

    quiet_transformers()
    model, tok = load_causal_lm(path)
    model.train()
    torch.manual_seed(seed)
    return model, tok


def token_lengths(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    return [len(x) for x in tokenizer(list(texts))["input_ids"]]


def stage_training_args(
    stage: StageRun, params: dict[str, Any], progress: bool, save_steps: int | None
) -> dict[str, Any]:
    steps = int(params["max_steps"])
    return base_training_args(
        stage.out_dir / CHECKPOINT_SUBDIR,
        steps,
        params["batch_size"],
        params["learning_rate"],
        params["seed"],
        progress,
        save_steps or max(1, steps // 4),
    )


def fit(trainer: Any, stage: StageRun, progress: bool) -> float:
    """Train (resuming the stage's checkpoint if any) with compact log-probs; returns seconds."""
    quiet_callbacks(trainer, progress)
    t0 = time.perf_counter()
    with compact_logprobs():
        trainer.train(resume_from_checkpoint=stage.resume)
    return time.perf_counter() - t0


def finish_stage(trainer: Any, tokenizer: Any, stage: StageRun, card: dict[str, Any]) -> Path:
    """Merge + write the model with its card, then mark the run finished (in that order)."""
    model_dir = save_merged(trainer, tokenizer, stage.out_dir / MODEL_SUBDIR, card)
    finish_stage_dir(stage.out_dir, stage.fingerprint)
    return model_dir


# ------------------------------------------------------------------ SFT
