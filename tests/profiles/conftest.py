"""Fixtures for profile tests: the tiny model's tokenizer (real SmolLM2 vocabulary), the seeded
synthetic dataset, and the hand-built dataset of handmade.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from seren.data import Dataset, load_dataset

from .handmade import hand_dataset


@pytest.fixture(scope="session")
def tok(tiny_model_dir: Path):
    from seren.profiles import load_tokenizer

    return load_tokenizer(tiny_model_dir)


@pytest.fixture(scope="session")
def synth(small_dataset: Path) -> Dataset:
    return load_dataset(small_dataset)


@pytest.fixture
def hand() -> Dataset:
    return hand_dataset()
