"""Fixtures for the seren.llm tests: one loaded tiny scorer per session (loading is the slow part)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_scorer(tiny_model_dir: Path):
    from seren.llm.scorer import SerenScorer

    return SerenScorer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def mixed_pairs() -> tuple[list[str], list[str]]:
    """Two users with several candidates each plus a lone user; lengths vary so rows get padded."""
    p1 = "Static: 42 events, active weekly, mid price band. Long-term: jazz records, vinyl, audio gear."
    p2 = "Static: 7 events, new user. Short-term: hiking boots, trail maps. Long-term: outdoor, camping, maps of national parks."
    p3 = "Reads science fiction."
    profiles = [p1, p1, p1, p2, p2, p3]
    items = [
        "Blue Train (vinyl reissue)",
        "A cookbook of sourdough breads with long fermentation schedules and many photographs",
        "Noise-cancelling headphones",
        "Lightweight tent for two",
        "A field guide to birds of the Pacific Northwest, illustrated, with range maps and song notation",
        "Dune",
    ]
    return profiles, items
