"""Calibration of P(Yes) (issue 12): the fitted maps, the one apply function (numpy == torch), the
ablation's calibrated ECE, the alignment gate and the shipped model's card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seren.llm.calibration import (
    DEFAULT_THRESHOLD,
    apply_calibration,
    decision_threshold,
    ece,
    fit_calibration,
    fit_isotonic,
    fit_platt,
    load_calibration,
)


def _overconfident(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels at a 15% base rate whose raw scores say ~60%: the shape SFT on balanced data gives."""
    rng = np.random.default_rng(seed)
    true_p = 1 / (1 + np.exp(-(rng.normal(-2.2, 1.2, n))))
    y = (rng.random(n) < true_p).astype(int)
    logit = np.log(true_p / (1 - true_p))
    raw = 1 / (1 + np.exp(-(0.5 * logit + 1.5)))  # monotone, miscalibrated
    users = np.repeat(np.arange(n // 10), 10)
    return y, raw, users


def test_platt_recovers_a_known_map() -> None:
    y, raw, _ = _overconfident()
    # raw = sigmoid(0.5 * L + 1.5) and P(y) = sigmoid(L) => P(y) = sigmoid(2 * logit(raw) - 3)
    cal = fit_platt(y, raw)
    assert cal["params"]["a"] == pytest.approx(2.0, abs=0.35)
    assert cal["params"]["b"] == pytest.approx(-3.0, abs=0.6)


def test_platt_converges_on_bimodal_sft_scores() -> None:
    """SFT scores sit near 0.0005 or 0.9; the earlier Newton loop diverged here (slope ~7e5)."""
    rng = np.random.default_rng(3)
    high = rng.random(120) < 0.3
    raw = np.where(high, rng.uniform(0.85, 0.97, 120), rng.uniform(2e-4, 1e-3, 120))
    y = (rng.random(120) < np.where(high, 0.4, 0.02)).astype(int)
    cal = fit_platt(y, raw)
    assert 0.1 < cal["params"]["a"] < 5.0
    calibrated = apply_calibration(cal, raw)
    # the mean calibrated probability matches the base rate (logistic regression's score equation)
    assert float(np.mean(calibrated)) == pytest.approx(y.mean(), abs=0.01)


def test_fit_calibration_brings_ece_down_and_records_the_choice() -> None:
    y, raw, users = _overconfident()
    assert ece(y, raw) > 0.3
    cal = fit_calibration(y[:1000], raw[:1000], groups=users[:1000], seed=0)
    assert cal["method"] in ("platt", "isotonic")
    sel = cal["selection"]
    assert set(sel["cv_ece"]) == set(sel["cv_brier"]) == {"platt", "isotonic"}
    assert sel["cv_brier"][cal["method"]] == min(sel["cv_brier"].values())
    assert sel["n"] == 1000 and sel["n_groups"] == 100
    # on rows it was not fitted on
    assert ece(y[1000:], apply_calibration(cal, raw[1000:])) < 0.05
    json.dumps(cal)  # plain JSON: it goes into the model card and the registry version


def test_decision_threshold_judges_the_validation_positive_rate() -> None:
    """Rate-matched: on the rows it was fitted on, exactly round(rate * n) candidates score >= it
    (continuous scores, no ties), and on unseen users the judged share stays near their rate."""
    y, raw, users = _overconfident()
    cal = fit_calibration(y[:1000], raw[:1000], groups=users[:1000], seed=0)
    thr = decision_threshold(cal)
    fitted = apply_calibration(cal, raw[:1000])
    assert int((fitted >= thr).sum()) == int(round(y[:1000].mean() * 1000))
    assert thr < 0.5  # a weak judge at a ~15% base rate: 0.5 would judge almost nothing
    unseen = float((apply_calibration(cal, raw[1000:]) >= thr).mean())
    assert unseen == pytest.approx(y[1000:].mean(), abs=0.03)
    assert decision_threshold(None) == decision_threshold({"method": "identity", "params": {}}) == DEFAULT_THRESHOLD
    tiny = fit_calibration(np.zeros(50), np.linspace(0.1, 0.9, 50))
    assert decision_threshold(tiny) == DEFAULT_THRESHOLD  # nothing fitted: the plain 0.5


def test_decision_threshold_quantile_over_a_population() -> None:
    """The rate comes from the labelled rows, the quantile from `population` (every held-out score)."""
    y, raw, users = _overconfident()
    cal = fit_calibration(y[:300], raw[:300], groups=users[:300], seed=0, population=raw)
    judged = int((apply_calibration(cal, raw) >= decision_threshold(cal)).sum())
    assert judged == int(round(y[:300].mean() * len(raw)))
    assert cal["selection"]["threshold_population"] == len(raw)


def test_rate_matched_threshold_is_the_kth_highest_score() -> None:
    from seren.llm.calibration import rate_matched_threshold

    s = np.array([0.9, 0.1, 0.4, 0.3, 0.8, 0.2, 0.7, 0.6, 0.5, 0.05])
    assert rate_matched_threshold(s, 0.3) == 0.7  # 3 of 10 score >= 0.7
    assert rate_matched_threshold(s, 0.01) == 0.9  # at least one is judged
    assert rate_matched_threshold(s, 1.0) == 0.05


def test_one_class_or_tiny_validation_is_identity() -> None:
    cal = fit_calibration(np.zeros(50), np.linspace(0.1, 0.9, 50))
    assert cal["method"] == "identity"
    p = np.array([0.2, 0.7], dtype=np.float32)
    assert apply_calibration(cal, p) is p
    assert apply_calibration(None, p) is p


@pytest.mark.parametrize("fit", [fit_platt, fit_isotonic])
def test_numpy_and_torch_paths_agree(fit) -> None:
    y, raw, _ = _overconfident(600)
    cal = fit(y, raw)
    grid = np.concatenate([np.linspace(0.0, 1.0, 501), raw[:200]]).astype(np.float32)
    a = apply_calibration(cal, grid)
    b = apply_calibration(cal, torch.from_numpy(grid)).numpy()
    assert a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.all(np.diff(apply_calibration(cal, np.sort(grid))) >= -1e-7)  # monotone: ranking kept


def test_isotonic_matches_np_interp_at_the_knots() -> None:
    cal = {"method": "isotonic", "params": {"x": [0.2, 0.5, 0.9], "y": [0.0, 0.1, 0.8]}}
    p = np.array([0.0, 0.2, 0.35, 0.5, 0.7, 0.9, 1.0])
    expected = np.array([0.0, 0.0, 0.05, 0.1, 0.45, 0.8, 0.8], dtype=np.float32)
    np.testing.assert_allclose(apply_calibration(cal, p), expected, atol=1e-7)
    np.testing.assert_allclose(apply_calibration(cal, torch.tensor(p)).numpy(), expected, atol=1e-6)


def test_unknown_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown calibration method"):
        apply_calibration({"method": "beta", "params": {}}, np.array([0.5]))


def test_evaluate_scores_reports_raw_and_calibrated_ece() -> None:
    from seren.serengpt.evaluate import evaluate_scores

    y, raw, users = _overconfident(1200, seed=1)
    df = pd.DataFrame({"user_id": [f"u{u}" for u in users], "item_id": np.arange(len(y)), "label": y, "score": raw})
    m = evaluate_scores(df, val_frac=0.5, seed=0)
    assert m["ece_raw"] == pytest.approx(ece(y, raw))
    assert m["ece_raw"] > 0.3 and m["ece"] < 0.05
    assert m["calibration"]["method"] in ("platt", "isotonic")
    assert m["mean_calibrated_score"] == pytest.approx(y.mean(), abs=0.04)


def _rows(sft_val: float, al_val: float) -> dict:
    cal = {"method": "platt", "params": {"a": 1.0, "b": -1.0}}
    return {
        "rows": {
            "SFT": {"roc_auc": 0.80, "val_roc_auc": sft_val, "calibration": cal},
            "SFT+IPO": {"roc_auc": 0.79, "val_roc_auc": al_val, "calibration": {**cal, "params": {"a": 2, "b": 0}}},
        }
    }


def test_alignment_gate_ships_sft_unless_alignment_beats_it_on_validation() -> None:
    from seren.serengpt.evaluate import select_final, selection_markdown

    lose = select_final(_rows(0.85, 0.85), "SFT", "SFT+IPO")  # a tie keeps SFT
    assert lose["chosen"] == "SFT" and lose["alignment_kept"] is False
    assert lose["calibration"]["params"] == {"a": 1.0, "b": -1.0}
    assert lose["alignment_effect_roc_auc"] == pytest.approx(-0.01)
    win = select_final(_rows(0.85, 0.86), "SFT", "SFT+IPO")
    assert win["chosen"] == "SFT+IPO" and win["calibration"]["params"] == {"a": 2, "b": 0}
    assert "Shipped model: **SFT+IPO**" in selection_markdown(win)


def test_finalize_model_writes_the_map_into_a_new_card(tiny_model_dir: Path, tmp_path: Path) -> None:
    from seren.llm.card import read_model_card
    from seren.serengpt.evaluate import finalize_model, select_final

    before = read_model_card(tiny_model_dir)
    sel = select_final(_rows(0.85, 0.84), "SFT", "SFT+IPO")
    out = finalize_model(tiny_model_dir, tmp_path / "final", sel, {"roc_auc": 0.8, "calibration": sel["calibration"]})
    assert load_calibration(out) == sel["calibration"]
    card = read_model_card(out)
    assert card["selection"]["chosen"] == "SFT" and card["metrics"]["held_out"] == {"roc_auc": 0.8}
    assert (out / "config.json").read_bytes() == (tiny_model_dir / "config.json").read_bytes()
    assert read_model_card(tiny_model_dir) == before  # the source model is untouched
    assert load_calibration(tiny_model_dir) is None


def test_isotonic_keeps_the_ranking_inside_a_pooled_block() -> None:
    """Centered isotonic: one knot per pooled block at its rows' mean score (hand-computed here), so
    scores that plain PAV would map to one plateau value stay distinct and in order."""
    x = np.array([1e-7, 2e-6, 0.58, 0.7, 0.8, 0.96, 0.965, 0.976])
    y = np.array([0, 0, 0, 1, 0, 0, 1, 1])
    cal = fit_isotonic(y, x)
    assert cal["params"]["x"] == pytest.approx([(1e-7 + 2e-6 + 0.58) / 3, (0.7 + 0.8 + 0.96) / 3, (0.965 + 0.976) / 2])
    assert cal["params"]["y"] == pytest.approx([0.0, 1 / 3, 1.0])
    out = apply_calibration(cal, np.array([0.6, 0.7, 0.9, 0.96]))
    assert np.all(np.diff(out) > 0)  # PAV's step function gave 1/3 to the last three
