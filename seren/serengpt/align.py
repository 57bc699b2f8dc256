"""SerenGPT stage 2: preference alignment of the SFT model (IPO by default, as in SERAL; DPO selectable).

Human serendipity judgments arrive as pairs (prompt, chosen answer, rejected answer). trl's
DPOTrainer trains a fresh LoRA on top of the *merged* SFT model; with a peft model and no explicit
reference, trl computes the reference log-probs with the adapter disabled, i.e. exactly the SFT
policy, so no second copy of the model is held in memory. The LoRA is merged at the end into a
plain HF directory with a model card (README.md + model_card.json), like the SFT stage.

Which pairs it trains on (`pairs`): every labelled pair ("label"), or only the on-policy pairs where
the SFT model's own judgment contradicts the label ("onpolicy", seren.serengpt.onpolicy), which carry
what SFT did not learn. When no pair is left (nothing contradicted, or every label below
`min_confidence`), nothing is trained: the SFT model passes through unchanged as the stage's output,
its card says why, and the alignment gate (seren.serengpt.evaluate.select_final: the aligned model
must *beat* SFT on validation) then ships SFT, so the pipeline runs to the end as usual.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren.errors import ConfigError
from seren.serengpt.sft import (
    MODEL_SUBDIR,
    balanced_sample,
    budget_params,
    finish_stage,
    fit,
    load_trainable,
    lora_config,
    loss_summary,
    numeric_metrics,
    open_stage,
    progress_callback,
    read_model_card,
    require_columns,
    stage_training_args,
    token_lengths,
    train_and_publish,
    utc_now,
)

log = logging.getLogger(__name__)

LOSSES = {"ipo": "ipo", "dpo": "sigmoid"}  # our name -> trl loss_type
PAIRS = ("label", "onpolicy")  # which preference pairs: every labelled pair | those the SFT model gets wrong
PREF_COLUMNS = ["prompt", "chosen", "rejected"]


def _pref_label(df: pd.DataFrame) -> pd.DataFrame:
    """Balanced subsampling needs a label: a pair whose chosen answer is Yes is a positive judgment."""
    if "label" in df.columns:
        return df
    out = df.copy()
    out["label"] = out["chosen"].astype(str).str.strip().str.lower().str.startswith("yes").astype(int)
    return out


def train_preference(
    sft_model_dir: str | os.PathLike[str],
    pref_df: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    loss: str = "ipo",
    beta: float = 0.1,
    max_steps: int = 30,
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
    pairs: str = "label",
    min_confidence: float = 0.0,
) -> Path:
    """IPO/DPO on (prompt, chosen, rejected) with the SFT model as reference; returns `out_dir/model`.

    `pairs`: "label" trains on every labelled pair, "onpolicy" only on those the SFT model gets
    wrong (most confident labels first under a `max_examples` cap); pairs whose label confidence is
    below `min_confidence` are dropped either way. With no pair left nothing is trained: the SFT
    model is written to `out_dir/model` unchanged, with a card saying so (the alignment gate then
    keeps SFT), rather than failing the pipeline on a model that already agrees with every label.
    """
    from datasets import Dataset as HFDataset
    from trl import DPOConfig, DPOTrainer

    from seren import __version__
    from seren import progress as events
    from seren.llm.base import resolve_base_model

    if loss not in LOSSES:
        raise ConfigError(f"unknown preference loss {loss!r}", f"use one of: {', '.join(LOSSES)}")
    if beta <= 0:
        raise ConfigError(f"beta must be > 0, got {beta}", "pass e.g. --beta 0.1")
    if pairs not in PAIRS:
        raise ConfigError(f"unknown preference pairs {pairs!r}", f"use one of: {', '.join(PAIRS)}")
    if not 0.0 <= min_confidence <= 1.0:
        raise ConfigError(f"min_confidence must be in [0, 1], got {min_confidence}", "pass e.g. 0.5")
    require_columns(pref_df, PREF_COLUMNS, "preference")
    params = {
        "loss": loss,
        "beta": beta,
        "pairs": pairs,
        "min_confidence": min_confidence,
        **budget_params(max_steps, max_examples, lora_r, lora_alpha, learning_rate, batch_size, seed, lora_layers),
    }
    sft_path = resolve_base_model(sft_model_dir)
    labelled = _pref_label(pref_df)
    selection: dict[str, Any] = {"pairs": pairs, "min_confidence": float(min_confidence)}
    if pairs == "onpolicy":
        from seren.serengpt.onpolicy import onpolicy_pairs

        chosen, stats = onpolicy_pairs(sft_path, labelled, min_confidence)
        selection["onpolicy"] = stats
        # most confident first: a cap keeps the strongest contradicted labels
        data = balanced_sample(chosen.head(max_examples) if max_examples else chosen, None, seed)
        if len(data):
            note = f"on-policy pairs: {stats['n_contradicted']} of {stats['n_candidates']} contradict the SFT model"
            events.emit(f"align-{loss}", 0, max_steps, note=note)
    else:
        conf = labelled["confidence"].astype(float) if "confidence" in labelled.columns else None
        kept = labelled[conf >= min_confidence] if conf is not None and min_confidence > 0 else labelled
        selection["n_below_min_confidence"] = int(len(labelled) - len(kept))
        data = balanced_sample(kept, max_examples, seed) if len(kept) else kept
    if len(data) == 0:
        return _pass_through(sft_path, Path(out_dir), loss, params, selection, len(pref_df))
    stage = open_stage(out_dir, params, data, PREF_COLUMNS, sft_path)
    if stage.done is not None:
        log.info("aligned model for this data and settings already exists at %s", stage.done)
        return stage.done

    model, tok = load_trainable(sft_path, seed)
    longest = [p + max(c, r, key=len) for p, c, r in zip(data["prompt"], data["chosen"], data["rejected"], strict=True)]
    max_length = max(token_lengths(tok, longest)) + 2
    args = DPOConfig(
        **stage_training_args(stage, params, progress, save_steps),
        loss_type=[LOSSES[loss]],
        beta=float(beta),
        max_length=max_length,
        precompute_ref_log_probs=False,
    )
    trainer = DPOTrainer(
        model=model,
        ref_model=None,  # peft + no ref model: reference = adapter disabled = the SFT policy
        args=args,
        train_dataset=HFDataset.from_pandas(data[PREF_COLUMNS], preserve_index=False),
        processing_class=tok,
        peft_config=lora_config(lora_r, lora_alpha, model, lora_layers),
        callbacks=[*callbacks, progress_callback(f"align-{loss}")],
    )
    seconds = fit(trainer, stage, progress)
    hist = trainer.state.log_history
    sft_card = read_model_card(sft_path)
    metrics: dict[str, Any] = {**loss_summary(hist)}
    for key in ("rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected"):
        s = loss_summary(hist, key)
        if s:
            name = key.replace("/", "_")
            metrics[f"{name}_first_quarter"] = s[f"{key}_first_quarter"]
            metrics[f"{name}_last_quarter"] = s[f"{key}_last_quarter"]
    metrics.update(
        {
            "steps": int(trainer.state.global_step),
            "resumed_from": Path(stage.resume).name if stage.resume else None,
            "seconds": round(seconds, 1),
        }
    )
    card = {
        "stage": f"sft+{loss}",
        "base_model": sft_card.get("base_model", str(sft_path)),
        "parent_model": str(sft_path),
        "created": utc_now(),
        "seren_version": __version__,
        "data": {
            "sft": sft_card.get("data", {}),
            "preference": {
                "n_pairs": int(len(data)),
                "n_available": int(len(pref_df)),
                "chosen_yes_share": float(data["label"].mean()),
                "n_users": int(data["user_id"].nunique()) if "user_id" in data.columns else None,
                "max_length_tokens": int(max_length),
                **selection,
            },
        },
        "hyperparameters": {
            "sft": sft_card.get("hyperparameters", {}),
            "preference": {**params, "trl_loss_type": LOSSES[loss], "reference": "SFT model (adapter disabled)"},
        },
        "train_metrics": {"sft": sft_card.get("train_metrics", {}), "preference": metrics},
    }
    if sft_card.get("prompt"):  # the prompt recipe is the SFT model's: alignment keeps the prompt
        card["prompt"] = sft_card["prompt"]
    # the SFT loss curve is already in the SFT card; keep this card readable
    card["train_metrics"]["sft"] = {k: v for k, v in card["train_metrics"]["sft"].items() if not k.endswith("_curve")}
    return finish_stage(trainer, tok, stage, card)


def _pass_through(
    sft_path: Path, out_dir: Path, loss: str, params: dict[str, Any], selection: dict[str, Any], n_available: int
) -> Path:
    """No preference pair left: the SFT model, unchanged (hard links where possible), as `out_dir/model`."""
    from seren import __version__
    from seren import progress as events
    from seren.llm.card import copy_model_with_card

    why = "no preference pair contradicts the SFT model" if selection["pairs"] == "onpolicy" else "no preference pair"
    why += f" (label confidence >= {selection['min_confidence']})" if selection["min_confidence"] > 0 else ""
    note = f"{why}: nothing trained, the SFT model passes through unchanged (the alignment gate keeps SFT)"
    log.warning("%s", note)
    events.emit(f"align-{loss}", 0, 0, note=note)
    sft_card = read_model_card(sft_path)
    card = {
        **{k: v for k, v in sft_card.items() if k in ("base_model", "prompt")},
        "stage": sft_card.get("stage", "sft"),
        "parent_model": str(sft_path),
        "created": utc_now(),
        "seren_version": __version__,
        "data": {
            "sft": sft_card.get("data", {}),
            "preference": {"n_pairs": 0, "n_available": int(n_available), "trained": False, "note": note, **selection},
        },
        "hyperparameters": {"sft": sft_card.get("hyperparameters", {}), "preference": params},
        "train_metrics": {"sft": sft_card.get("train_metrics", {}), "preference": {"steps": 0}},
    }
    card["train_metrics"]["sft"] = {k: v for k, v in card["train_metrics"]["sft"].items() if not k.endswith("_curve")}

    return copy_model_with_card(sft_path, out_dir / MODEL_SUBDIR, card)


def preference_margins(model: Any, tokenizer: Any, pref_df: pd.DataFrame, batch_size: int = 8) -> np.ndarray:
    """log p(chosen | prompt) - log p(rejected | prompt) per pair, summed over answer tokens + EOS.

    The quantity IPO/DPO push up; used to check that alignment moved the policy the right way.
    Only the answer positions go through the LM head (the prompt positions are not needed).
    """
    import torch

    require_columns(pref_df, PREF_COLUMNS, "preference")
    eos = tokenizer.eos_token or ""
    head = model.get_output_embeddings()
    decoder = model.get_decoder()

    def logps(prompts: list[str], answers: list[str]) -> np.ndarray:
        out = []
        for s in range(0, len(prompts), batch_size):
            rows = []
            for p, a in zip(prompts[s : s + batch_size], answers[s : s + batch_size], strict=True):
                p_ids = tokenizer(p, add_special_tokens=False)["input_ids"]
                full = tokenizer(p + a + eos, add_special_tokens=False)["input_ids"]
                k = 0
                while k < min(len(p_ids), len(full)) and p_ids[k] == full[k]:
                    k += 1
                rows.append((full, k))
            width = max(len(f) for f, _ in rows)
            ids = torch.full((len(rows), width), int(tokenizer.pad_token_id), dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, (f, _) in enumerate(rows):
                ids[i, : len(f)] = torch.tensor(f)
                mask[i, : len(f)] = 1
            with torch.inference_mode():
                hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False)[0]
                total = []
                for i, (f, k) in enumerate(rows):
                    pos = torch.arange(max(k, 1) - 1, len(f) - 1)  # position t predicts token t + 1
                    logits = head(hidden[i, pos]).float()
                    lp = torch.log_softmax(logits, dim=-1).gather(-1, ids[i, pos + 1, None])[:, 0]
                    total.append(float(lp.sum()))
            out.append(np.asarray(total))
        return np.concatenate(out)

    prompts = pref_df["prompt"].astype(str).tolist()
    return logps(prompts, pref_df["chosen"].astype(str).tolist()) - logps(
        prompts, pref_df["rejected"].astype(str).tolist()
    )


def align_artifact(
    training_data_dir: str | os.PathLike[str],
    sft_model_dir: str | os.PathLike[str],
    model_out: str | os.PathLike[str],
    loss: str = "ipo",
    **params: Any,
) -> dict[str, float]:
    """Training-data dir + SFT model -> merged aligned model at `model_out`; numeric metrics.

    `params` are train_preference's (LoraTrainingConfig.pref_kwargs()). With pairs="onpolicy" the
    selection stats are in the metrics as `data.onpolicy.*` (n_candidates, n_contradicted,
    contradicted_positive/negative, mean_confidence); `steps` 0 means no pair was left and
    `model_out` is the SFT model unchanged (the alignment gate then ships SFT).
    """
    from seren.serengpt.labeling import TrainingData

    td = TrainingData.load(training_data_dir)
    card = train_and_publish(
        lambda work: train_preference(sft_model_dir, td.pref_train, work, loss=loss, **params), model_out
    )
    pref = card.get("train_metrics", {}).get("preference", {})
    return numeric_metrics({"data": card["data"]["preference"], **pref})
