from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seren.errors import SerenError
from seren.llm.scorer import MIN_SHARED_PREFIX, ScoringHead, SerenScorer

TOL = 1e-5


def test_head_naive_and_generate_agree(tiny_scorer: SerenScorer, mixed_pairs) -> None:
    profiles, items = mixed_pairs
    head = tiny_scorer.score(profiles, items, batch_size=4)
    naive = tiny_scorer.naive_score(profiles, items, batch_size=4)
    gen = tiny_scorer.generate_score(profiles, items)
    assert head.dtype == np.float32 and head.shape == (len(items),)
    assert np.all((head > 0) & (head < 1))
    assert np.abs(head - naive).max() <= TOL
    assert np.abs(head - gen).max() <= TOL
    # The scores differ across rows far more than the tolerance, so agreement is not vacuous.
    assert np.ptp(naive) > 100 * TOL


def test_shared_prefix_path_matches_plain_and_is_used(tiny_scorer: SerenScorer, mixed_pairs, monkeypatch) -> None:
    profiles, items = mixed_pairs
    calls: list[int] = []
    real = SerenScorer._score_shared_prefix

    def spy(self, rows, n_prefix):
        calls.append(n_prefix)
        return real(self, rows, n_prefix)

    monkeypatch.setattr(SerenScorer, "_score_shared_prefix", spy)
    shared = tiny_scorer.score(profiles, items, batch_size=3, mode="prefix")
    plain = tiny_scorer.score(profiles, items, batch_size=3, share_prefix=False)
    assert calls and min(calls) >= MIN_SHARED_PREFIX
    # The batch of one user's candidates shares the system prompt *and* the whole profile.
    system_only = len(tiny_scorer.tokenizer(tiny_scorer.prompts("x", "y")[0])["input_ids"]) // 2
    assert max(calls) > system_only
    assert np.abs(shared - plain).max() <= TOL


def test_padding_does_not_change_a_rows_score(tiny_scorer: SerenScorer, mixed_pairs) -> None:
    profiles, items = mixed_pairs
    short = min(range(len(items)), key=lambda i: len(profiles[i]) + len(items[i]))
    alone = tiny_scorer.score(profiles[short], items[short], batch_size=1)[0]
    for mode in ("packed", "prefix", "pair"):
        batched = tiny_scorer.score(profiles, items, batch_size=len(items), mode=mode)
        assert abs(batched[short] - alone) <= TOL
    # Negative control: the padded row's score does move when the pads are not masked out.
    ids, mask = tiny_scorer.encode(profiles, items)
    assert mask[short].sum() < mask.shape[1], "the short row must be padded for this test to mean anything"
    with torch.inference_mode():
        logits = tiny_scorer.model(input_ids=ids).logits[:, -1]
    wrong = torch.softmax(logits[:, [tiny_scorer.yes_id, tiny_scorer.no_id]], -1)[short, 0].item()
    assert abs(wrong - alone) > 10 * TOL


def test_right_padding_equals_left_padding(tiny_scorer: SerenScorer, mixed_pairs) -> None:
    profiles, items = mixed_pairs
    ids, mask = tiny_scorer.encode(profiles, items)
    assert ids.dtype == mask.dtype == torch.int64
    assert bool(mask[:, -1].all()), "left padding: the answer slot is the last column"
    # Move each row's real tokens to the front.
    r_ids, r_mask = torch.full_like(ids, tiny_scorer.tokenizer.pad_token_id), torch.zeros_like(mask)
    for i in range(ids.shape[0]):
        n = int(mask[i].sum())
        r_ids[i, :n], r_mask[i, :n] = ids[i, -n:], 1
    with torch.inference_mode():
        left, right = tiny_scorer.head(ids, mask), tiny_scorer.head(r_ids, r_mask)
    assert torch.allclose(left, right, atol=TOL)


def test_scores_follow_input_order_and_batch_size(tiny_scorer: SerenScorer, mixed_pairs) -> None:
    profiles, items = mixed_pairs
    base = tiny_scorer.score(profiles, items, batch_size=16)
    perm = np.random.default_rng(0).permutation(len(items))
    shuffled = tiny_scorer.score([profiles[i] for i in perm], [items[i] for i in perm], batch_size=2)
    assert np.abs(shuffled - base[perm]).max() <= TOL
    one_by_one = tiny_scorer.score(profiles, items, batch_size=1)
    assert np.abs(one_by_one - base).max() <= TOL


@pytest.mark.parametrize(
    ("profiles", "items", "message"),
    [
        ([], [], "empty candidate list"),
        ("a user", [], "empty candidate list"),
        (["a", "b"], ["x"], "2 profile texts for 1 item"),
        (["a"], ["  "], "item text #0 is empty"),
    ],
)
def test_bad_input_is_one_line_error(tiny_scorer: SerenScorer, profiles, items, message) -> None:
    with pytest.raises(SerenError, match=message) as e:
        tiny_scorer.score(profiles, items)
    assert "\n" not in e.value.line()


def test_head_needs_a_causal_lm(tiny_scorer: SerenScorer) -> None:
    with pytest.raises(SerenError, match="no separate decoder and LM head"):
        ScoringHead(tiny_scorer.model.get_decoder(), tiny_scorer.yes_id, tiny_scorer.no_id)


def test_onnx_export_round_trips(tiny_scorer: SerenScorer, mixed_pairs, tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    profiles, items = mixed_pairs
    ids, mask = tiny_scorer.encode(profiles[:2], items[:2])
    out = tmp_path / "scorer.onnx"
    torch.onnx.export(
        tiny_scorer.head,
        (ids, mask),
        str(out),
        input_names=["input_ids", "attention_mask"],
        output_names=["score"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "seq"},
            "score": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    graph = onnx.load(str(out)).graph
    dims = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*graph.input, *graph.output]
    }
    assert dims == {"input_ids": ["batch", "seq"], "attention_mask": ["batch", "seq"], "score": ["batch"]}
    # Run at a different batch size and sequence length than the export trace.
    ids, mask = tiny_scorer.encode(profiles, items)
    assert ids.shape[0] != 2
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    want = tiny_scorer.score(profiles, items, share_prefix=False)
    assert got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-4
