"""On-policy preference pairs: the examples where the SFT model's own judgment contradicts the label.

Preference pairs built from every SFT label repeat what SFT already learned (the measured IPO effect
on top of 144 SFT steps was +0.000 ROC-AUC). The pairs that carry new information are those the SFT
policy gets wrong: score every preference prompt with the SFT model, keep the rows whose P(Yes)
sits on the wrong side of the decision point, most confident labels first (the label's confidence
is kept in the frame, and `min_confidence` drops weak labels). IPO/DPO then push the policy where
it contradicts the human / teacher / behaviour label.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd


def sft_p_yes(model_dir: str | os.PathLike[str], prompts: list[str], batch_size: int = 16) -> np.ndarray:
    """Raw P(Yes) of a model for already rendered prompts (left padded, answer slot last)."""
    import torch

    from seren.llm.base import load_causal_lm
    from seren.llm.prompts import answer_token_ids
    from seren.llm.scorer import ScoringHead

    model, tok = load_causal_lm(model_dir)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    head = ScoringHead(model.eval(), *answer_token_ids(tok)).eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(prompts), batch_size):
            enc = tok(prompts[s : s + batch_size], padding=True, return_tensors="pt")
            out.append(head(enc["input_ids"].long(), enc["attention_mask"].long()).float().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def select_onpolicy(
    pref_df: pd.DataFrame, p_yes: np.ndarray, threshold: float = 0.5, min_confidence: float = 0.0
) -> pd.DataFrame:
    """Rows where the policy contradicts the label (P(Yes) < threshold on a positive, >= on a
    negative) and the label's confidence is at least `min_confidence`; most confident first."""
    df = pref_df.reset_index(drop=True).assign(sft_p_yes=np.asarray(p_yes, dtype=float))
    label = df["label"].astype(int) if "label" in df.columns else None
    if label is None:
        raise ValueError("preference pairs need a 0/1 `label` column")
    wrong = ((label == 1) & (df["sft_p_yes"] < threshold)) | ((label == 0) & (df["sft_p_yes"] >= threshold))
    conf = df["confidence"].astype(float) if "confidence" in df.columns else pd.Series(1.0, index=df.index)
    keep = df[wrong & (conf >= min_confidence)]
    return keep.assign(confidence=conf[keep.index]).sort_values("confidence", ascending=False, kind="stable")


def onpolicy_pairs(
    sft_model_dir: str | os.PathLike[str], pref_df: pd.DataFrame, min_confidence: float = 0.0, batch_size: int = 16
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(contradicted pairs, stats) for the SFT model at `sft_model_dir`."""
    p = sft_p_yes(sft_model_dir, pref_df["prompt"].astype(str).tolist(), batch_size)
    sel = select_onpolicy(pref_df, p, min_confidence=min_confidence)
    stats = {
        "n_candidates": int(len(pref_df)),
        "n_contradicted": int(len(sel)),
        "contradicted_positive": int((sel["label"] == 1).sum()),
        "contradicted_negative": int((sel["label"] == 0).sum()),
        "mean_confidence": float(sel["confidence"].mean()) if len(sel) else None,
    }
    return sel.reset_index(drop=True), stats
