"""Fixtures for the data-layer tests: one medium synthetic dataset and a CLI runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SEREN = Path(sys.executable).with_name("seren")


@pytest.fixture(scope="session")
def medium_ds():
    """Large enough for statistical assertions, small enough to build in about a second."""
    from seren.data.synthetic import SyntheticConfig, generate

    return generate(SyntheticConfig(n_users=400, n_items=600, seed=11))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `seren` entry point, as a user would."""
    return subprocess.run([str(SEREN), *args], capture_output=True, text=True, timeout=120)
