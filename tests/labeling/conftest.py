"""Fixtures for labeling tests: tokenizer, synthetic dataset + cutoff profiles, the hand-built
dataset with its cutoff profiles, and a real OpenAI-compatible teacher server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from seren.data import Dataset, load_dataset

from ..profiles.handmade import CUT, hand_dataset
from .chat_server import ChatServer


@pytest.fixture(scope="session")
def tok(tiny_model_dir: Path):
    from seren.profiles import load_tokenizer

    return load_tokenizer(tiny_model_dir)


@pytest.fixture(scope="session")
def synth(small_dataset: Path) -> Dataset:
    return load_dataset(small_dataset)


@pytest.fixture(scope="session")
def synth_profiles(synth: Dataset, tok) -> pd.DataFrame:
    """Four snapshots covering the last 80% of events (the pipeline's default labeling setup)."""
    from seren.profiles import build_profile_snapshots, labeling_cutoffs

    return build_profile_snapshots(synth, tok, labeling_cutoffs(synth.interactions, 0.8, snapshots=4))


@pytest.fixture
def hand() -> Dataset:
    return hand_dataset()


@pytest.fixture
def hand_profiles(hand: Dataset, tok) -> pd.DataFrame:
    from seren.profiles import build_profiles

    return build_profiles(hand, tok, as_of=CUT)


@pytest.fixture
def chat_server() -> Iterator[Callable[[Callable[[str], str | int]], ChatServer]]:
    servers: list[ChatServer] = []

    def start(reply: Callable[[str], str | int]) -> ChatServer:
        servers.append(ChatServer(reply))
        return servers[-1]

    yield start
    for s in servers:
        s.close()
