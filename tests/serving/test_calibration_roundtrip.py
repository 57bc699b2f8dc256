"""Issue 12: the calibration map travels with the model (card -> registry version -> exported graph)
and Triton itself serves the calibrated score: its raw output, queried without any client-side map,
equals the calibrated in-process score, and every client path applies the map exactly once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seren.errors import ConfigError
from seren.llm.calibration import apply_calibration, fingerprint, load_calibration
from serving.client import SerenClient

from .conftest import ITEMS, PROFILES

pytestmark = pytest.mark.integration

PLATT = {"method": "platt", "params": {"a": 1.7, "b": -2.3}}


def test_calibration_round_trips_through_registry_and_triton(
    tiny_scorer, tiny_model_dir: Path, serving_dir: Path, tmp_path: Path
) -> None:
    from seren.registry.registry import MODEL_DIR, ONNX_DIR, Registry
    from seren.serengpt.evaluate import finalize_model
    from serving.export import export_onnx
    from serving.model_repository import build_model_repository
    from serving.packed_client import PackedClient
    from serving.triton import TritonServer

    shipped = finalize_model(tiny_model_dir, tmp_path / "shipped", {"chosen": "SFT", "calibration": PLATT})
    export_onnx(shipped, tmp_path / "export" / "model.onnx")
    reg = Registry(str(tmp_path / "registry"))
    man = reg.register("serengpt", model_dir=shipped, onnx=tmp_path / "export")
    vdir = reg.local_copy("serengpt", man["version"])
    cal = load_calibration(vdir / MODEL_DIR)
    assert cal == PLATT
    repo = build_model_repository(vdir / ONNX_DIR / "model.onnx", vdir / MODEL_DIR, tmp_path / "repo", version=1)

    raw = tiny_scorer.score(PROFILES, ITEMS)
    expected = apply_calibration(cal, raw)
    assert np.abs(expected - raw).max() > 0.05  # the map really moves the scores
    with TritonServer(
        repo,
        log_file=tmp_path / "tritonserver.log",
        backend_dir=serving_dir / "backends",
        models=["serengpt", "serengpt_packed"],
    ) as server:
        # Triton's own output, no map on the client: already the calibrated probability
        with SerenClient(server.http_url) as client:
            assert client.served_calibration() == {"calibrated": True, "calibration_sha": fingerprint(PLATT)}
            served_raw = client.score(PROFILES, ITEMS)
        np.testing.assert_allclose(served_raw, expected, atol=1e-4)
        # a client holding the card's map applies nothing more (exactly once), per pair and packed
        with SerenClient(server.grpc_url, "grpc", calibration=cal) as client:
            np.testing.assert_allclose(client.score(PROFILES, ITEMS), expected, atol=1e-4)
        with PackedClient(server.http_url, calibration=cal) as client:
            np.testing.assert_allclose(client.score(PROFILES, ITEMS), expected, atol=1e-4)


def test_a_client_holding_another_map_is_refused(triton) -> None:
    """The session server serves the tiny model's graph (its card has no map: identity folded in);
    a client handed a Platt map holds another model's card and must not get silently mixed scores."""
    with SerenClient(triton.http_url) as client:
        assert client.served_calibration()["calibrated"] is True
        assert client.calibration_to_apply() is None
    with SerenClient(triton.http_url, calibration=PLATT) as client, pytest.raises(ConfigError, match="calibration map"):
        client.score(PROFILES[:1], ITEMS[:1])
