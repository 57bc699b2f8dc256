"""Cognition profiles (SERAL stage 1): multi-granularity user profiles as short prompt text."""

from seren.profiles.build import ProfileConfig, build_profile_snapshots, build_profiles, profile_metrics
from seren.profiles.io import labeling_cutoffs, profiles_for_feast, read_profiles, write_profiles
from seren.profiles.text import count_tokens, item_text, load_tokenizer

__all__ = [
    "ProfileConfig",
    "build_profile_snapshots",
    "build_profiles",
    "count_tokens",
    "item_text",
    "labeling_cutoffs",
    "load_tokenizer",
    "profile_metrics",
    "profiles_for_feast",
    "read_profiles",
    "write_profiles",
]
