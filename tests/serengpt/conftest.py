"""Fixtures for SerenGPT training/evaluation tests: a toy judgment task on the tiny model.

The toy task is learnable from the prompt text alone (the candidate's category decides the
label), so a few dozen LoRA steps on the tiny random model must move P(Yes) towards the labels;
the trained models are built once per session and shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seren.llm.prompts import NO, YES, build_prompt, completion

SURPRISING = ("Jazz", "Poetry")
EXPECTED = ("Rock", "Baking")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny-model steps are dominated by per-op overhead; one thread avoids OpenMP contention on a busy CI box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def toy_frame(tokenizer, n_users: int = 12) -> pd.DataFrame:
    rows = []
    for u in range(n_users):
        profile = f"Top interests: {['Books', 'Music', 'Cooking'][u % 3]} 80%. Engaged subcategories: Rock, Baking."
        for k, cat in enumerate(SURPRISING + EXPECTED):
            label = int(cat in SURPRISING)
            text = f"Item {u}-{k}\nCategory: {cat}\nA {cat.lower()} item."
            rows.append(
                {"user_id": f"u{u:02d}", "item_id": f"i{k}", "profile_text": profile, "item_text": text, "label": label}
            )
    df = pd.DataFrame(rows)
    df["prompt"] = [build_prompt(tokenizer, p, t) for p, t in zip(df["profile_text"], df["item_text"], strict=True)]
    df["completion"] = [completion(bool(v)) for v in df["label"]]
    df["chosen"] = np.where(df["label"] == 1, YES, NO)
    df["rejected"] = np.where(df["label"] == 1, NO, YES)
    return df


@pytest.fixture(scope="session")
def toy(tiny_model_dir: Path) -> pd.DataFrame:
    from transformers import AutoTokenizer

    return toy_frame(AutoTokenizer.from_pretrained(str(tiny_model_dir)))


@pytest.fixture(scope="session")
def trained(tiny_model_dir: Path, toy: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """SFT then IPO on the toy task (fixed seed), shared by the quality tests."""
    from seren.serengpt.align import train_preference
    from seren.serengpt.sft import train_sft

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("serengpt_train")
    sft = train_sft(
        tiny_model_dir, toy, root / "sft", max_steps=64, batch_size=8, learning_rate=1e-2, seed=0, progress=False
    )
    ipo = train_preference(
        sft, toy, root / "ipo", loss="ipo", max_steps=8, batch_size=8, learning_rate=3e-3, seed=0, progress=False
    )
    return {"base": tiny_model_dir, "sft": sft, "ipo": ipo, "root": root}
