"""Canonical data: schema + validation, dataset I/O, generators and adapters."""

from seren.data.dataset import Dataset, load_dataset, save_dataset
from seren.data.schema import (
    EVENT_TYPES,
    POSITIVE_EVENTS,
    is_positive,
    validate_interactions,
    validate_items,
    validate_labels,
    validate_users,
)

__all__ = [
    "EVENT_TYPES",
    "POSITIVE_EVENTS",
    "Dataset",
    "is_positive",
    "load_dataset",
    "save_dataset",
    "validate_interactions",
    "validate_items",
    "validate_labels",
    "validate_users",
]

# generators and adapters (imported after the core so their `seren.data.dataset` imports resolve)
from seren.data.adapters import load_interactions, load_items  # noqa: E402
from seren.data.movielens import load_movielens  # noqa: E402
from seren.data.split import chronological_split  # noqa: E402
from seren.data.synthetic import SyntheticConfig, generate  # noqa: E402

__all__ += [
    "SyntheticConfig",
    "chronological_split",
    "generate",
    "load_interactions",
    "load_items",
    "load_movielens",
]
