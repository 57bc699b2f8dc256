"""Issue 12: on-policy preference pairs are the examples the SFT model gets wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seren.serengpt.onpolicy import onpolicy_pairs, select_onpolicy, sft_p_yes


def test_select_keeps_contradicted_rows_most_confident_first() -> None:
    df = pd.DataFrame(
        {
            "prompt": list("abcdef"),
            "label": [1, 1, 0, 0, 1, 0],
            "confidence": [0.9, 0.5, 0.7, 1.0, 0.3, 0.2],
        }
    )
    p = np.array([0.2, 0.8, 0.6, 0.1, 0.49, 0.5])  # wrong: a (pos<.5), c (neg>=.5), e (pos<.5), f (neg>=.5)
    sel = select_onpolicy(df, p)
    assert sel["prompt"].tolist() == ["a", "c", "e", "f"]
    assert sel["sft_p_yes"].tolist() == [0.2, 0.6, 0.49, 0.5]
    assert select_onpolicy(df, p, min_confidence=0.5)["prompt"].tolist() == ["a", "c"]
    with pytest.raises(ValueError, match="label"):
        select_onpolicy(df.drop(columns="label"), p)


def test_onpolicy_pairs_score_the_rendered_prompts_like_the_scorer(tiny_model_dir, toy) -> None:
    from seren.llm.scorer import SerenScorer

    rows = toy.iloc[:8]
    p = sft_p_yes(tiny_model_dir, rows["prompt"].tolist(), batch_size=3)
    ref = SerenScorer.from_pretrained(tiny_model_dir).score(rows["profile_text"].tolist(), rows["item_text"].tolist())
    np.testing.assert_allclose(p, ref, atol=1e-5)
    sel, stats = onpolicy_pairs(tiny_model_dir, rows.assign(confidence=1.0))
    wrong = ((rows["label"] == 1) & (p < 0.5)) | ((rows["label"] == 0) & (p >= 0.5))
    assert stats["n_candidates"] == 8 and stats["n_contradicted"] == int(wrong.sum()) == len(sel)
    assert set(sel["prompt"]) == set(rows.loc[wrong.to_numpy(), "prompt"])


def _fake_policy(monkeypatch: pytest.MonkeyPatch, frame: pd.DataFrame, p_yes: np.ndarray) -> None:
    """The SFT model's P(Yes) per prompt, given by hand (no model is run)."""
    by_prompt = dict(zip(frame["prompt"], p_yes, strict=True))
    monkeypatch.setattr(
        "seren.serengpt.onpolicy.sft_p_yes",
        lambda model_dir, prompts, batch_size=16: np.array([by_prompt[p] for p in prompts]),
    )


def test_onpolicy_preference_trains_only_on_the_contradicted_pairs(monkeypatch, tiny_model_dir, toy, tmp_path) -> None:
    from seren.llm.card import read_model_card
    from seren.serengpt.align import train_preference

    frame = toy.assign(confidence=np.where(np.arange(len(toy)) % 2 == 0, 0.9, 0.3))
    wrong = np.arange(len(toy)) % 3 == 0  # every third row is contradicted: 16 of 48
    p = np.where(wrong, 1 - frame["label"], frame["label"]).astype(float) * 0.8 + 0.1
    _fake_policy(monkeypatch, frame, p)
    out = train_preference(
        tiny_model_dir, frame, tmp_path, pairs="onpolicy", min_confidence=0.5, max_steps=1, batch_size=4, progress=False
    )
    keep = frame[wrong & (frame["confidence"] >= 0.5)]  # rows 0, 6, 12, ...: the confident contradicted ones
    assert len(keep) == 8
    pref = read_model_card(out)["data"]["preference"]
    assert pref["onpolicy"] == {
        "n_candidates": 48,
        "n_contradicted": 8,
        "contradicted_positive": int((keep["label"] == 1).sum()),
        "contradicted_negative": int((keep["label"] == 0).sum()),
        "mean_confidence": 0.9,
    }
    assert (pref["pairs"], pref["min_confidence"], pref["n_pairs"], pref["n_available"]) == ("onpolicy", 0.5, 8, 48)
    assert read_model_card(out)["train_metrics"]["preference"]["steps"] == 1


def test_no_contradicted_pair_passes_the_sft_model_through(monkeypatch, capsys, tiny_model_dir, toy, tmp_path) -> None:
    from seren import progress
    from seren.llm.card import read_model_card
    from seren.serengpt.align import train_preference

    _fake_policy(monkeypatch, toy, toy["label"].to_numpy() * 0.8 + 0.1)  # the policy agrees with every label
    monkeypatch.setenv(progress.ENV, "1")
    out = train_preference(tiny_model_dir, toy, tmp_path, pairs="onpolicy", max_steps=1, batch_size=4)
    card = read_model_card(out)
    pref = card["data"]["preference"]
    assert (pref["n_pairs"], pref["trained"], pref["onpolicy"]["n_contradicted"]) == (0, False, 0)
    assert card["train_metrics"]["preference"] == {"steps": 0} and card["stage"] == "sft"
    weights = "model.safetensors"
    assert (out / weights).read_bytes() == (tiny_model_dir / weights).read_bytes()  # the SFT model, unchanged
    lines = [e for e in map(progress.parse, capsys.readouterr().out.splitlines()) if e]
    assert len(lines) == 1 and "no preference pair contradicts the SFT model: nothing trained" in progress.describe(
        lines[0]
    )
