"""Issue 12: the card's calibration map is folded into both exported graphs (per pair and packed), so
ONNX Runtime / Triton output the calibrated probability; the metadata says so, validation compares
with the calibrated in-process score, and an older graph without the flag keeps the client-side map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seren.errors import ConfigError
from seren.llm.calibration import apply_calibration, fingerprint, map_left_to_apply
from serving.export import graph_calibration, onnx_metadata, packed_sibling
from serving.triton_models.packed_scorer.model import OnnxPackedScorer
from serving.triton_models.scorer.model import OnnxScorer

from .conftest import ITEMS, PROFILES

PLATT = {"method": "platt", "params": {"a": 1.7, "b": -2.3}}
PAIRS = ([p for p in PROFILES for _ in ITEMS], [i for _ in PROFILES for i in ITEMS])  # 16 pairs


@pytest.fixture(scope="module")
def raw_pairs(scorer_onnx: Path, tiny_scorer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, mask, scores) of the tiny model's graph (its card has no map: raw P(Yes))."""
    ids, mask = (t.numpy() for t in tiny_scorer.encode(*PAIRS))
    return ids, mask, OnnxScorer(scorer_onnx)(ids, mask)


def _isotonic(raw: np.ndarray) -> dict:
    """Knots inside the tiny model's score range: some scores fall below the first and above the last."""
    lo, hi = np.quantile(raw, [0.2, 0.8])
    assert hi > lo
    return {"method": "isotonic", "params": {"x": np.linspace(lo, hi, 5).tolist(), "y": [0.02, 0.1, 0.35, 0.6, 0.9]}}


@pytest.fixture(scope="module", params=["platt", "isotonic"])
def calibrated_export(request, tiny_model_dir: Path, raw_pairs, tmp_path_factory) -> tuple[dict, Path, Path]:
    """(map, shipped model dir with the map in its card, its exported model.onnx + packed.onnx)."""
    from seren.serengpt.evaluate import finalize_model
    from serving.export import export_onnx

    cal = PLATT if request.param == "platt" else _isotonic(raw_pairs[2])
    tmp = tmp_path_factory.mktemp(f"calibrated-{request.param}")
    shipped = finalize_model(tiny_model_dir, tmp / "shipped", {"chosen": "SFT", "calibration": cal})
    return cal, shipped, export_onnx(shipped, tmp / "export" / "model.onnx")


def test_exported_graphs_equal_numpy_apply_calibration(calibrated_export, raw_pairs, scorer_onnx, tiny_scorer) -> None:
    cal, _, onnx = calibrated_export
    ids, mask, raw = raw_pairs
    expected = apply_calibration(cal, raw)
    assert np.abs(expected - raw).max() > 0.05  # the map really moves the scores
    if cal["method"] == "isotonic":  # both flat ends of np.interp are exercised
        assert (raw < cal["params"]["x"][0]).any() and (raw > cal["params"]["x"][-1]).any()
    np.testing.assert_allclose(OnnxScorer(onnx)(ids, mask), expected, atol=1e-5)

    # packed graph: the same packs through the raw and the calibrated graph, real slots compared
    from seren.llm.packed import to_arrays

    packs = tiny_scorer.pack(*PAIRS)
    pad = int(tiny_scorer.tokenizer.pad_token_id)
    raw_packed, cal_packed = OnnxPackedScorer(packed_sibling(scorer_onnx)), OnnxPackedScorer(packed_sibling(onnx))
    for p in packs:
        arrays = to_arrays([p], pad)
        n = len(p.candidates)
        want = apply_calibration(cal, raw_packed(*arrays)[0, :n])
        np.testing.assert_allclose(cal_packed(*arrays)[0, :n], want, atol=1e-5)


def test_metadata_says_which_map_the_graph_applies(calibrated_export, scorer_onnx: Path) -> None:
    cal, _, onnx = calibrated_export
    for graph in (onnx, packed_sibling(onnx)):
        assert graph_calibration(graph) == {
            "calibrated": True,
            "calibration_sha": fingerprint(cal),
            "method": cal["method"],
        }
    assert onnx_metadata(onnx)["seren.calibrated"] == "true"
    # a card without a map folds in the identity: still flagged, so clients add nothing
    assert graph_calibration(scorer_onnx) == {
        "calibrated": True,
        "calibration_sha": fingerprint(None),
        "method": "identity",
    }


def test_validation_compares_with_the_calibrated_in_process_score(calibrated_export, tiny_model_dir: Path) -> None:
    import pandas as pd

    from serving.validate import validate

    cal, shipped, onnx = calibrated_export
    df = pd.DataFrame({"profile_text": PAIRS[0][:8], "item_text": PAIRS[1][:8]})
    report = validate(shipped, onnx, df, batch_size=8, latency_rows=2)
    assert report["calibration"]["graph_calibrated"] is True and report["calibration"]["packed_graph_calibrated"]
    assert report["calibration"]["card_sha"] == report["calibration"]["graph_sha"] == fingerprint(cal)
    assert report["gates"]["onnx_max_abs_diff"]["value"] <= 1e-4
    assert report["gates"]["onnx_packed_max_abs_diff"]["value"] <= 1e-4 and report["passed"] is True
    # the same graph against a card without the map: parity fails (it is not this card's export)
    other = validate(tiny_model_dir, onnx, df, batch_size=8, latency_rows=2)
    assert other["gates"]["onnx_max_abs_diff"]["passed"] is False and other["passed"] is False


def test_an_old_graph_without_the_flag_keeps_the_client_side_map(tmp_path: Path, tiny_model_dir: Path) -> None:
    """calibrate=False writes a graph as before the map was folded in: the repository's ensemble config
    says calibrated "false" and the client applies the card's map itself."""
    from seren.serengpt.evaluate import finalize_model
    from serving.client import SerenClient
    from serving.export import export_onnx
    from serving.model_repository import ENSEMBLE, PACKED_ENSEMBLE, calibration_facts, read_config

    shipped = finalize_model(tiny_model_dir, tmp_path / "shipped", {"chosen": "SFT", "calibration": PLATT})
    old = export_onnx(shipped, tmp_path / "old" / "model.onnx", calibrate=False)
    assert graph_calibration(old)["calibrated"] is False and "seren.calibrated" not in onnx_metadata(old)
    assert calibration_facts(old) == {"calibrated": "false"}
    assert map_left_to_apply(PLATT, False, None) is PLATT

    # the client decides by the served config's flag (as Triton's model-config API returns it)
    def client_for(params: dict) -> SerenClient:
        c = SerenClient("127.0.0.1:1", calibration=PLATT)
        c._config = {"max_batch_size": 8, "parameters": {k: {"string_value": v} for k, v in params.items()}}
        return c

    assert client_for({}).calibration_to_apply() is PLATT  # no flag at all (older repository)
    assert client_for({"calibrated": "false"}).calibration_to_apply() is PLATT
    new = calibration_facts(packed_sibling(export_onnx(shipped, tmp_path / "new" / "model.onnx")))
    assert client_for(new).calibration_to_apply() is None
    other = {**new, "calibration_sha": fingerprint(None)}
    with pytest.raises(ConfigError, match="calibration map"):
        client_for(other).calibration_to_apply()

    # what a repository built from each export tells clients
    from serving.model_repository import build_model_repository

    repo = build_model_repository(tmp_path / "new" / "model.onnx", shipped, tmp_path / "repo")
    for ens in (ENSEMBLE, PACKED_ENSEMBLE):
        params = read_config(repo / ens).parameters
        assert params["calibrated"].string_value == "true"
        assert params["calibration_sha"].string_value == fingerprint(PLATT)
