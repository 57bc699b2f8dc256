"""Session fixtures for the exploration tests: one small seeded dataset, 12 interest clusters,
their transitions, a tiny novelty model trained on them and the feedback aligner (fixed seeds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

N_TOP, N_SUB = 4, 3


@pytest.fixture(scope="session")
def small_ds(small_dataset: Path) -> Any:
    from seren.data import load_dataset

    return load_dataset(small_dataset)


@pytest.fixture(scope="session")
def item_embeddings(small_ds: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from seren.exploration.clusters import embed_texts, item_texts

    return embed_texts(item_texts(small_ds.items), cache_dir=tmp_path_factory.mktemp("emb_cache"))


@pytest.fixture(scope="session")
def small_clusters(small_ds: Any, item_embeddings: Any) -> Any:
    from seren.exploration.clusters import build_clusters

    return build_clusters(small_ds.items, n_top=N_TOP, n_sub=N_SUB, seed=0, embeddings=item_embeddings)


@pytest.fixture(scope="session")
def small_transitions(small_ds: Any, small_clusters: Any) -> Any:
    from seren.exploration.transitions import build_transitions

    return build_transitions(
        small_ds.interactions, small_clusters.item_to_cluster, small_clusters.descriptions, min_count=1, test_frac=0.2
    )


@pytest.fixture(scope="session")
def novelty_dir(
    tiny_model_dir: Path, small_transitions: Any, small_clusters: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from seren.exploration.novelty import train_novelty

    return train_novelty(
        tiny_model_dir,
        small_transitions,
        small_clusters.descriptions,
        tmp_path_factory.mktemp("novelty"),
        max_steps=12,
        batch_size=8,
        learning_rate=5e-3,
        seed=0,
    )


@pytest.fixture(scope="session")
def novelty_model(novelty_dir: Path) -> Any:
    from seren.exploration.novelty import NoveltyModel

    return NoveltyModel.from_pretrained(novelty_dir)


@pytest.fixture(scope="session")
def small_feedback(small_ds: Any, small_clusters: Any, small_transitions: Any) -> tuple[Any, Any]:
    from seren.exploration.alignment import aggregate_feedback, novel_exposures

    exposures = novel_exposures(small_ds.interactions, small_clusters.item_to_cluster)
    return exposures, aggregate_feedback(exposures, small_transitions.cutoff)


@pytest.fixture(scope="session")
def small_aligner(small_clusters: Any, small_transitions: Any, small_feedback: tuple[Any, Any]) -> Any:
    from seren.exploration.alignment import TripleFeatures, train_aligner

    exposures, feedback = small_feedback
    return train_aligner(
        feedback,
        TripleFeatures(small_clusters, exposures, small_transitions.sequences, small_transitions.cutoff),
        min_support=2,
    )
