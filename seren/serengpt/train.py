"""SerenGPT end to end: dataset -> profiles -> labels -> SFT -> IPO/DPO -> evaluation.

What `seren serengpt train`, the demo and the quality benchmark run (the KFP pipeline runs the
same library calls as separate components). Every stage writes under one output directory:

    out/profiles.parquet      cognition profiles as of the labeling cutoff(s)
    out/training_data/        SFT examples, preference pairs, held-out candidates (split by user)
    out/sft/model/            merged SFT model (+ checkpoints/ while training)
    out/align-ipo/model/      merged SFT+IPO model
    out/final/                the shipped model: SFT+IPO when it beats SFT on the validation users,
                              else SFT; its card holds the calibration map and the selection
    out/eval/                 ablation.json / .md / .html, scores.parquet
    out/summary.json          paths, metrics and seconds per stage

Re-running with the same data and settings resumes SFT/alignment from their checkpoints (or
skips them when finished); the data stages are deterministic and cheap, so they are rebuilt.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seren.errors import ConfigError
from seren.io import write_json

log = logging.getLogger(__name__)

Stage = Callable[[str, dict[str, Any]], None]


@dataclass
class TrainConfig:
    """Budget and hyper-parameters; the defaults are the CPU demo budget measured for SmolLM2."""

    base_model: str = "smollm2"
    loss: str = "ipo"  # final alignment loss: ipo | dpo
    compare_losses: tuple[str, ...] = ()  # extra alignment losses trained for the ablation only
    # data
    token_budget: int = 64  # profile tokens: the prompt length drives CPU cost
    label_frac: float = 0.4
    snapshots: int = 2
    test_frac: float = 0.25
    max_candidates: int = 10
    # SFT
    sft_steps: int = 60
    sft_lr: float = 5e-4
    max_examples: int | None = None
    # preference
    pref_steps: int = 30
    pref_lr: float = 2e-4
    pref_max_examples: int | None = None
    pref_batch_size: int | None = None  # pairs per step (None: batch_size); a pair costs ~4 forwards
    beta: float = 0.1
    pref_pairs: str = "all"  # all | onpolicy (only the pairs the SFT model gets wrong; seren.serengpt.onpolicy)
    # shared
    lora_r: int = 8
    lora_alpha: int = 16
    lora_layers: int | None = None  # LoRA on the top N decoder blocks only (None: all)
    batch_size: int = 8
    seed: int = 0
    ablation: bool = True
    eval_batch_size: int = 16
    threads: int | None = None  # torch intra-op threads (None: torch default)
    progress: bool = True
    # human labels (SERAL's collaborative data intervention): a Serendipity-2018 survey whose
    # judgments join the SFT/preference training set as source "human" (the most trusted)
    human: str | None = None
    human_movies: str | None = None  # MovieLens folder the survey joins (None: the dataset's items)
    human_definition: str = "any"
    extra: dict[str, Any] = field(default_factory=dict)

    def shared_kwargs(self) -> dict[str, Any]:
        """Settings the SFT and preference stages share."""
        return {
            "lora_r": self.lora_r,
            "lora_alpha": self.lora_alpha,
            "lora_layers": self.lora_layers,
            "seed": self.seed,
            "progress": self.progress,
        }

    def validate(self) -> TrainConfig:
        from seren.serengpt.align import LOSSES

        for loss in (self.loss, *self.compare_losses):
            if loss not in LOSSES:
                raise ConfigError(f"unknown preference loss {loss!r}", f"use one of: {', '.join(LOSSES)}")
        for name in ("sft_steps", "pref_steps", "batch_size", "lora_r", "token_budget", "max_candidates"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}", f"pass a positive {name}")
        if self.pref_pairs not in ("all", "onpolicy"):
            raise ConfigError(f"unknown pref_pairs {self.pref_pairs!r}", "use all or onpolicy")
        for name in ("max_examples", "pref_max_examples", "pref_batch_size"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be >= 1, got {v}", "pass a positive budget or omit it")
        return self


def _stage_printer(on_stage: Stage | None) -> Stage:
    def emit(name: str, info: dict[str, Any]) -> None:
        log.info("stage %s: %s", name, info)
        if on_stage is not None:
            on_stage(name, info)

    return emit


def build_data(
    data_dir: str | os.PathLike[str], out_dir: Path, cfg: TrainConfig, stage: Stage
) -> tuple[Any, Any, Any, Any]:
    """(dataset, tokenizer, profiles, TrainingData) with profiles before the labeling cutoff(s)."""
    from seren.data.dataset import load_dataset
    from seren.profiles.build import build_profile_snapshots, build_profiles
    from seren.profiles.io import labeling_cutoffs, write_profiles
    from seren.profiles.text import load_tokenizer
    from seren.serengpt.labeling import build_labels, build_training_data
    from seren.serengpt.recipe import prompt_recipe

    t0 = time.perf_counter()
    ds = load_dataset(data_dir)
    tok = load_tokenizer(cfg.base_model)
    cutoffs = labeling_cutoffs(ds.interactions, cfg.label_frac, cfg.snapshots)
    if not cutoffs:
        raise ConfigError("label_frac must be > 0 to hold out events for labels", "pass e.g. label_frac=0.4")
    if len(cutoffs) > 1:
        profiles = build_profile_snapshots(ds, tok, cutoffs, token_budget=cfg.token_budget)
    else:
        profiles = build_profiles(ds, tok, as_of=cutoffs[0], token_budget=cfg.token_budget)
    write_profiles(profiles, out_dir / "profiles.parquet")
    stage("profiles", {**profiles.attrs["metrics"], "seconds": round(time.perf_counter() - t0, 1)})

    t0 = time.perf_counter()
    labels = build_labels(ds, profiles, seed=cfg.seed)
    td = build_training_data(
        labels, profiles, ds.items, tok, test_frac=cfg.test_frac, seed=cfg.seed, max_candidates=cfg.max_candidates
    )
    td.metrics = {**labels.attrs["metrics"], **td.metrics}
    td.metrics["prompt"] = prompt_recipe(cfg.token_budget)
    td.labels = labels
    if cfg.human:
        _add_human(td, ds, tok, cfg)
    td.save(out_dir / "training_data")
    stage("labeling", {**td.metrics, "seconds": round(time.perf_counter() - t0, 1)})
    return ds, tok, profiles, td


def _add_human(td: Any, ds: Any, tok: Any, cfg: TrainConfig) -> None:
    """Survey judgments (leave-one-out prompts) join the training tables as source "human"."""
    import pandas as pd

    from seren.data.movielens import load_movielens
    from seren.data.survey import load_survey
    from seren.serengpt.human import balance_oversample, human_candidates, human_examples
    from seren.serengpt.labeling import PREF_COLUMNS, SFT_COLUMNS

    assert cfg.human is not None
    survey = load_survey(cfg.human, load_movielens(cfg.human_movies) if cfg.human_movies else ds, cfg.human_definition)
    ex = balance_oversample(human_examples(human_candidates(survey, tok, cfg.token_budget), tok), cfg.seed)
    td.sft_train = pd.concat([td.sft_train, ex[SFT_COLUMNS]], ignore_index=True)
    td.pref_train = pd.concat([td.pref_train, ex[PREF_COLUMNS]], ignore_index=True)
    td.metrics |= {
        "train_source_human": int(len(ex)),
        "human_judgments": survey.report["n_labels"],
        "human_users": survey.report["n_users"],
        "human_without_movie": survey.report["n_without_movie"],
    }


def train_serengpt(
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: TrainConfig | None = None,
    on_stage: Stage | None = None,
) -> dict[str, Any]:
    """Run every stage; returns (and writes to out/summary.json) paths, metrics and timings."""
    import torch

    from seren.llm.base import resolve_base_model
    from seren.serengpt.align import train_preference
    from seren.serengpt.evaluate import finalize_model, run_ablation, select_final, selection_markdown, write_ablation
    from seren.serengpt.sft import read_model_card, train_sft, update_model_card

    cfg = (config or TrainConfig()).validate()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stage = _stage_printer(on_stage)
    base_path = resolve_base_model(cfg.base_model)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    ds, _, profiles, td = build_data(data_dir, out, cfg, stage)
    timings["data"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sft_dir = train_sft(
        base_path,
        td.sft_train,
        out / "sft",
        max_steps=cfg.sft_steps,
        max_examples=cfg.max_examples,
        learning_rate=cfg.sft_lr,
        batch_size=cfg.batch_size,
        prompt=td.metrics.get("prompt"),
        **cfg.shared_kwargs(),
    )
    timings["sft"] = time.perf_counter() - t0
    stage(
        "sft",
        {
            "model": str(sft_dir),
            **read_model_card(sft_dir).get("train_metrics", {}),
            "seconds": round(timings["sft"], 1),
        },
    )

    pref = td.pref_train
    if cfg.pref_pairs == "onpolicy":
        from seren.serengpt.onpolicy import onpolicy_pairs

        t0 = time.perf_counter()
        picked, pstats = onpolicy_pairs(sft_dir, td.pref_train, batch_size=cfg.eval_batch_size)
        if len(picked) >= 2 and picked["label"].nunique() == 2:
            pref = picked
        else:
            pstats["fallback"] = "fewer than 2 contradicted pairs of both answers: all pairs used"
        timings["onpolicy-pairs"] = time.perf_counter() - t0
        stage("onpolicy-pairs", {**pstats, "seconds": round(timings["onpolicy-pairs"], 1)})
    aligned: dict[str, Path] = {}
    for loss in dict.fromkeys((cfg.loss, *cfg.compare_losses)):
        t0 = time.perf_counter()
        aligned[loss] = train_preference(
            sft_dir,
            pref,
            out / f"align-{loss}",
            loss=loss,
            beta=cfg.beta,
            max_steps=cfg.pref_steps,
            max_examples=cfg.pref_max_examples,
            learning_rate=cfg.pref_lr,
            batch_size=cfg.pref_batch_size or cfg.batch_size,
            **cfg.shared_kwargs(),
        )
        timings[f"align-{loss}"] = time.perf_counter() - t0
        pm = read_model_card(aligned[loss]).get("train_metrics", {}).get("preference", {})
        stage(f"align-{loss}", {"model": str(aligned[loss]), **pm, "seconds": round(timings[f"align-{loss}"], 1)})

    final = aligned[cfg.loss]
    source = {
        "dataset_dir": str(Path(data_dir).resolve()),
        "token_budget": cfg.token_budget,
        "label_frac": cfg.label_frac,
        "snapshots": cfg.snapshots,
        "training_data_dir": str((out / "training_data").resolve()),
    }
    for d in (sft_dir, *aligned.values()):
        update_model_card(d, source=source, prompt=td.metrics["prompt"])
    summary: dict[str, Any] = {
        "config": dataclasses.asdict(cfg),
        "model_dir": str(final),
        "sft_model_dir": str(sft_dir),
        "aligned_model_dirs": {k: str(v) for k, v in aligned.items()},
        "base_model_path": str(base_path),
        "training_data": td.metrics,
        "profiles": profiles.attrs.get("metrics", {}),
    }
    if cfg.ablation:
        t0 = time.perf_counter()
        models = {"zero-shot base LLM": base_path, "SFT": sft_dir}
        models.update({f"SFT+{k.upper()}": v for k, v in aligned.items()})
        # baselines see behaviour before each candidate's profile snapshot (its as_of), like the prompts
        results, md = run_ablation(td.eval_candidates, ds, models, batch_size=cfg.eval_batch_size, seed=cfg.seed)
        # the alignment gate picks the shipped model; its calibration map (validation users) goes in its card
        aligned_name = f"SFT+{cfg.loss.upper()}"
        sel = select_final(results, "SFT", aligned_name)
        results["selection"] = sel
        md += selection_markdown(sel)
        paths = write_ablation(results, md, out / "eval")
        final_row = results["rows"][sel["chosen"]]
        final = finalize_model(models[sel["chosen"]], out / "final", sel, final_row)
        update_model_card(final, metrics={**read_model_card(final).get("metrics", {}), "ablation": {k: v.get("roc_auc") for k, v in results["rows"].items()}})  # fmt: skip
        timings["evaluate"] = time.perf_counter() - t0
        summary["model_dir"] = str(final)
        summary["selection"] = sel
        summary["ablation"] = {k: v for k, v in results.items() if k != "scores"}
        summary["ablation_markdown"] = md
        summary["eval_paths"] = {k: str(v) for k, v in paths.items()}
        summary["metrics"] = final_row
        stage("evaluate", {"markdown": md, "seconds": round(timings["evaluate"], 1)})
    summary["seconds"] = {k: round(v, 1) for k, v in timings.items()}
    summary["seconds"]["total"] = round(sum(timings.values()), 1)
    write_json(out / "summary.json", json.loads(json.dumps(summary, default=str)))
    return summary
