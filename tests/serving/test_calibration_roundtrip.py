"""Issue 12: the calibration map travels with the model (card -> registry version) and the score
served through Triton + SerenClient equals the calibrated in-process score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seren.llm.calibration import apply_calibration, load_calibration
from serving.client import SerenClient

from .conftest import ITEMS, PROFILES

pytestmark = pytest.mark.integration

PLATT = {"method": "platt", "params": {"a": 1.7, "b": -2.3}}


def test_calibration_round_trips_through_registry_and_triton(
    triton, tiny_scorer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from seren.registry.registry import MODEL_DIR, Registry
    from seren.serengpt.evaluate import finalize_model

    shipped = finalize_model(tiny_model_dir, tmp_path / "shipped", {"chosen": "SFT", "calibration": PLATT})
    reg = Registry(str(tmp_path / "registry"))
    man = reg.register("serengpt", model_dir=shipped)
    version_dir = reg.local_copy("serengpt", man["version"]) / MODEL_DIR
    cal = load_calibration(version_dir)
    assert cal == PLATT

    raw = tiny_scorer.score(PROFILES, ITEMS)
    expected = apply_calibration(cal, raw)
    assert np.abs(expected - raw).max() > 0.05  # the map really moves the scores
    # the served model is the same weights (tests/serving/conftest.py's repository of the tiny model)
    with SerenClient(triton.http_url, calibration=cal) as client:
        served = client.score(PROFILES, ITEMS)
    np.testing.assert_allclose(served, expected, atol=1e-4)
