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
