"""Issue 12: training the top LoRA blocks from cached lower-block hidden states is the same
training as the plain path (same loss curve, same adapted weights) on the tiny model."""

from __future__ import annotations

import numpy as np
import torch


def _run(tiny_model_dir, toy, cached: bool, steps: int = 6):
    from peft import get_peft_model

    from seren.llm.base import load_causal_lm
    from seren.serengpt.cached import tokenize, train_loop
    from seren.serengpt.sft import lora_config

    model, tok = load_causal_lm(tiny_model_dir)
    torch.manual_seed(0)
    peft_model = get_peft_model(model, lora_config(4, 8, model, top_layers=1))
    examples = tokenize(tok, toy["prompt"].tolist(), toy["completion"].tolist())
    hist, info = train_loop(peft_model, examples, 1, steps, 4, 1e-2, seed=0, cached=cached, pad_id=tok.pad_token_id)
    lora = {n: p.detach().clone() for n, p in peft_model.named_parameters() if "lora_" in n}
    return [h["loss"] for h in hist], lora, info, examples, tok


def test_cached_path_gives_the_plain_loss_curve(tiny_model_dir, toy) -> None:
    plain, w_plain, info_plain, examples, tok = _run(tiny_model_dir, toy, cached=False)
    cached, w_cached, info_cached, _, _ = _run(tiny_model_dir, toy, cached=True)
    assert info_plain["hidden_state_cache"] is False and info_cached["cached_from_block"] == 1
    assert len(plain) == len(cached) == 6
    np.testing.assert_allclose(cached, plain, rtol=1e-5, atol=1e-6)
    assert plain[-1] < plain[1]  # it trains (step 1 runs at warm-up lr 0, as transformers' schedule)
    for name, w in w_plain.items():
        torch.testing.assert_close(w_cached[name], w, rtol=1e-4, atol=1e-6)
    # the loss is on the completion only: its first target is the answer token the scorer reads
    from seren.llm.prompts import answer_token_ids

    yes, no = answer_token_ids(tok)
    assert all(e.ids[e.n_prompt] in (yes, no) for e in examples)
    assert all(e.ids[-1] == tok.eos_token_id for e in examples)


def test_train_sft_with_top_blocks_uses_the_cache(tiny_model_dir, toy, tmp_path) -> None:
    from seren.llm.scorer import SerenScorer
    from seren.serengpt.sft import read_model_card, train_sft

    out = train_sft(
        tiny_model_dir, toy, tmp_path, max_steps=3, batch_size=4, learning_rate=1e-2, progress=False, lora_layers=1
    )
    tm = read_model_card(out)["train_metrics"]
    assert tm["hidden_state_cache"] is True and tm["steps"] == 3 and len(tm["loss_curve"]) == 3
    # the merged model differs from the base model (the adapter was trained and merged)
    base = SerenScorer.from_pretrained(tiny_model_dir).score(
        toy["profile_text"][:4].tolist(), toy["item_text"][:4].tolist()
    )
    new = SerenScorer.from_pretrained(out).score(toy["profile_text"][:4].tolist(), toy["item_text"][:4].tolist())
    assert np.abs(new - base).max() > 1e-4
