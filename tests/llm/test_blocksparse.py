"""Block-sparse packed attention equals dense attention under the packing mask (hand-made rows)."""

from __future__ import annotations

import torch

from seren.llm.blocksparse import pack_layout, packed_attention

# Two packs in one row, then padding: pack 1 = shared(3) + slot 1 (2 tokens) + slot 2 (3 tokens),
# pack 2 = shared(2) + slot 3 (2 tokens); answer slot 4 is unused (padding, index 0).
SEG = [-1, -1, -1, 1, 1, 2, 2, 2, -2, -2, 3, 3, 0, 0]
ANSWER = [4, 7, 11, 0]


def _visible(seg: list[int]) -> torch.Tensor:
    """The packing rule, written out: key k visible to query q iff k <= q, not padding, and in q's
    own segment or in the shared part of q's pack."""
    n = len(seg)
    vis = torch.zeros(n, n, dtype=torch.bool)
    for q in range(n):
        pack = min(seg[: q + 1])
        for k in range(q + 1):
            vis[q, k] = seg[k] != 0 and (seg[k] == seg[q] or seg[k] == pack)
    return vis


def test_positions_restart_per_candidate_and_per_pack() -> None:
    _, pos = pack_layout(torch.tensor([SEG]), torch.tensor([ANSWER]), torch.float32)
    assert pos[0].tolist() == [0, 1, 2, 3, 4, 3, 4, 5, 0, 1, 2, 3, 0, 0]


def test_attention_equals_dense_masked_attention() -> None:
    torch.manual_seed(0)
    b, heads, kv_heads, n, d = 1, 4, 2, len(SEG), 8
    q, k, v = torch.randn(b, heads, n, d), torch.randn(b, kv_heads, n, d), torch.randn(b, kv_heads, n, d)
    layout, _ = pack_layout(torch.tensor([SEG]), torch.tensor([ANSWER]), torch.float32)
    out, _ = packed_attention(torch.nn.Module(), q, k, v, None, scaling=d**-0.5, seren_layout=layout)

    vis = _visible(SEG)
    kk, vv = k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1)
    scores = (q @ kk.transpose(-1, -2)) * d**-0.5
    dense = torch.softmax(scores.masked_fill(~vis, float("-inf")), dim=-1) @ vv  # [B,H,L,D]
    real = [i for i, s in enumerate(SEG) if s != 0]
    torch.testing.assert_close(out.transpose(1, 2)[:, :, real], dense[:, :, real], atol=1e-5, rtol=1e-5)


def test_a_candidate_never_sees_another() -> None:
    """Changing slot 2's keys/values leaves every other real token's output unchanged."""
    torch.manual_seed(1)
    n, d = len(SEG), 8
    q, k, v = torch.randn(1, 2, n, d), torch.randn(1, 2, n, d), torch.randn(1, 2, n, d)
    layout, _ = pack_layout(torch.tensor([SEG]), torch.tensor([ANSWER]), torch.float32)
    base, _ = packed_attention(torch.nn.Module(), q, k, v, None, seren_layout=layout)
    slot2 = [i for i, s in enumerate(SEG) if s == 2]
    k2, v2 = k.clone(), v.clone()
    k2[:, :, slot2] += 3.0
    v2[:, :, slot2] -= 2.0
    moved, _ = packed_attention(torch.nn.Module(), q, k2, v2, None, seren_layout=layout)
    others = [i for i, s in enumerate(SEG) if s not in (0, 2)]
    torch.testing.assert_close(moved[:, others], base[:, others], atol=1e-6, rtol=0)
    assert (moved[:, slot2] - base[:, slot2]).abs().max() > 1e-2
