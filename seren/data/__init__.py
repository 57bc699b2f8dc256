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
