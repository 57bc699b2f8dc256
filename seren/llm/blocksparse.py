"""Block-sparse attention for packed rows: each candidate attends to its shared part and itself only.

A packed row (seren.llm.packed) is `shared + tail_1 + ... + tail_k`. Under a dense [L, L] mask the
attention of an L-token row costs L^2 per layer even though almost all of it is masked: for a user
with a 215-token shared part and 20 candidates of 73 tokens (L ~ 1,675) that is as many FLOPs as
the whole linear part of SmolLM2-135M, so the packed graph ran at ~64% of the machine's FLOP limit
while the per-pair graph ran at ~92%. Here the linear layers still run on the flat row (every token
once), and only attention is regrouped:

- the shared tokens of the row (every pack's) attend causally within their own pack's shared part;
- the candidate tokens are gathered into a [C, T] block (T = the longest tail), each block row
  attending to its pack's shared keys and causally to its own tokens;
- the outputs are gathered back to the flat row order.

Cost per layer: S^2 + C*T*(S + T) instead of L^2 (~6x less at the sizes above). The layout (gather
indices, masks, position ids) is derived from the segment ids once per forward with traceable
tensor ops, so the exported ONNX graph keeps the (input_ids, segment_ids, answer_index) interface
and builds the layout itself. It is plugged into the decoder through transformers' attention
interface (registered as `seren_packed`), so every model family that dispatches attention through
it (Llama/SmolLM2 do) gets it without re-implementing a decoder layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AttentionInterface

NAME = "seren_packed"
PAD_SEGMENT = 0


@dataclass
class PackLayout:
    """Where each token of a packed row goes in the regrouped attention (built by `pack_layout`)."""

    shared_index: torch.Tensor  # [B, S] flat position of the s-th shared token (clamped when invalid)
    shared_mask: torch.Tensor  # [B, 1, S, S] additive: causal within the same pack's shared part
    cand_index: torch.Tensor  # [B, C, T] flat position of token t of candidate slot c
    cross_mask: torch.Tensor  # [B, 1, C, 1, S] additive: candidate c sees its pack's shared tokens
    own_mask: torch.Tensor  # [B, 1, C, T, T] additive: causal within the candidate, padding hidden
    source: torch.Tensor  # [B, L] index into cat(shared out, candidate out, zero row) per flat token


def _additive(visible: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # A finite minimum: a query that sees nothing (padding) gets uniform attention instead of NaN.
    return torch.zeros(visible.shape, dtype=dtype, device=visible.device).masked_fill(~visible, torch.finfo(dtype).min)


def pack_layout(
    segment_ids: torch.Tensor, answer_index: torch.Tensor, dtype: torch.dtype
) -> tuple[PackLayout, torch.Tensor]:
    """(layout, position_ids [B, L]) of packed rows, in traceable torch ops.

    Segment ids as in seren.llm.packed: a pack's shared part is -(k+1), candidate slot j (the j-th
    answer index) is j+1, padding 0. A candidate's tokens end at its answer index. Positions: the
    shared part counts from 0, a candidate continues from its pack's shared part as if alone.
    """
    seg = segment_ids.to(torch.int64)
    ans = answer_index.to(torch.int64)
    dev = seg.device
    n = seg.shape[1]
    steps = torch.arange(n, device=dev)  # [L]
    slots = torch.arange(ans.shape[1], device=dev) + 1  # [C]

    # Candidates: length, first token, [C, T] gather indices.
    length = (seg[:, None, :] == slots[None, :, None]).sum(-1)  # [B, C]
    start = ans - length + 1
    width = torch.arange(length.max().clamp(min=1), device=dev)  # [T]
    cand_valid = width[None, None, :] < length[:, :, None]  # [B, C, T]
    cand_index = torch.where(cand_valid, start[:, :, None] + width, torch.zeros_like(cand_valid, dtype=torch.int64))

    # Shared tokens in row order, [B, S]: the s-th is the shared token of rank s (no sort: TopK
    # with a data-dependent K is not portable to every runtime the graph goes to).
    is_shared = seg < 0
    n_shared = is_shared.sum(-1)  # [B]
    shared_rank = (is_shared.to(torch.int64).cumsum(-1) - 1).clamp(min=0)  # [B, L]
    srange = torch.arange(n_shared.max().clamp(min=1), device=dev)  # [S]
    hit = (shared_rank[:, None, :] == srange[None, :, None]) & is_shared[:, None, :]  # [B, S, L]
    shared_index = (hit.to(torch.int64) * steps).sum(-1)
    shared_valid = srange[None, :] < n_shared[:, None]
    shared_pack = torch.where(shared_valid, seg.gather(1, shared_index), torch.zeros_like(shared_index))

    # A candidate's pack: the shared id of the last shared part before it (ids fall -1, -2, ...).
    before = steps[None, None, :] < start[:, :, None]  # [B, C, L]
    cand_pack = torch.where(before, seg[:, None, :], torch.zeros_like(before, dtype=torch.int64)).min(-1).values

    same_ss = (shared_pack[:, :, None] == shared_pack[:, None, :]) & shared_valid[:, None, :] & shared_valid[:, :, None]
    see_ss = same_ss & (srange[None, :] <= srange[:, None])[None]  # [B, S, S]
    see_cs = (cand_pack[:, :, None] == shared_pack[:, None, :]) & shared_valid[:, None, :]  # [B, C, S]
    causal_t = width[None, :] <= width[:, None]  # [T, T]
    see_cc = causal_t[None, None] & cand_valid[:, :, None, :]  # [B, C, T, T]

    # Back to the flat row: source index and position of every token.
    slot_t = (seg - 1).clamp(min=0)
    offset = steps[None, :] - start.gather(1, slot_t)
    n_s, n_c, n_t = srange.shape[0], ans.shape[1], width.shape[0]
    trash = torch.full_like(seg, 0) + n_s + n_c * n_t
    source = torch.where(is_shared, shared_rank, torch.where(seg > 0, n_s + slot_t * n_t + offset, trash))
    shared_pos = (see_ss.to(torch.int64).sum(-1) - 1).clamp(min=0)  # [B, S]
    cand_base = see_cs.to(torch.int64).sum(-1)  # [B, C]: its pack's shared length
    pos = torch.where(
        is_shared,
        shared_pos.gather(1, shared_rank),
        torch.where(seg > 0, cand_base.gather(1, slot_t) + offset, torch.zeros_like(seg)),
    )
    layout = PackLayout(
        shared_index=shared_index,
        shared_mask=_additive(see_ss, dtype)[:, None],
        cand_index=cand_index,
        cross_mask=_additive(see_cs, dtype)[:, None, :, None, :],
        own_mask=_additive(see_cc, dtype)[:, None],
        source=source,
    )
    return layout, pos


def _take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x [B, H, L, D] at token positions index [B, N] -> [B, H, N, D].

    Rows of a token-major view picked with one flat index (ONNX Gather on axis 0, a row copy)
    instead of torch.gather (ONNX GatherElements, which needs an index as large as its output).
    """
    b, h, n, d = x.shape
    flat = (index + (torch.arange(b, device=index.device) * n)[:, None]).reshape(-1)
    rows = x.transpose(1, 2).reshape(b * n, h, d).index_select(0, flat)
    return rows.reshape(b, -1, h, d).transpose(1, 2)


def packed_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    seren_layout: PackLayout | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention function (transformers' interface) over a PackLayout; [B, H, L, D] -> [B, L, H, D]."""
    if seren_layout is None:
        raise RuntimeError("seren_packed attention needs seren_layout (call it through PackedScoringHead)")
    lay = seren_layout
    groups = query.shape[1] // key.shape[1]
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    b, h, _, d = query.shape

    def kv(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        # gather first, then share each key/value head among its query heads (grouped-query attention)
        x = _take(x, index)
        return x.repeat_interleave(groups, dim=1) if groups > 1 else x

    query = query * scale  # on [B,H,L,D] rather than on the larger score tensors
    qs, ks, vs = _take(query, lay.shared_index), kv(key, lay.shared_index), kv(value, lay.shared_index)
    shared_out = torch.softmax(qs @ ks.transpose(-1, -2) + lay.shared_mask, dim=-1) @ vs  # [B,H,S,D]

    n_c, n_t = lay.cand_index.shape[1], lay.cand_index.shape[2]
    flat = lay.cand_index.reshape(b, -1)
    qc, kc, vc = _take(query, flat), kv(key, flat), kv(value, flat)  # [B,H,C*T,D]
    cross = (qc @ ks.transpose(-1, -2)).reshape(b, h, n_c, n_t, -1) + lay.cross_mask  # [B,H,C,T,S]
    qc5, kc5, vc5 = (x.reshape(b, h, n_c, n_t, d) for x in (qc, kc, vc))
    own = qc5 @ kc5.transpose(-1, -2) + lay.own_mask  # [B,H,C,T,T]
    probs = torch.softmax(torch.cat([cross, own], dim=-1), dim=-1)
    n_s = ks.shape[2]
    cand_out = probs[..., :n_s].reshape(b, h, n_c * n_t, n_s) @ vs + (probs[..., n_s:] @ vc5).reshape(b, h, -1, d)

    out = torch.cat([shared_out, cand_out, torch.zeros_like(shared_out[:, :, :1])], dim=2)  # [B,H,S+C*T+1,D]
    n_out = out.shape[2]
    flat = (lay.source + (torch.arange(b, device=out.device) * n_out)[:, None]).reshape(-1)
    rows = out.transpose(1, 2).reshape(b * n_out, h, d).index_select(0, flat)
    return rows.reshape(b, -1, h, d), None  # [B,L,H,D], what transformers' attention functions return


AttentionInterface.register(NAME, packed_attention)


@contextmanager
def packed_attention_on(config: Any) -> Iterator[None]:
    """Route the decoder's attention through `packed_attention` for one forward (then restore)."""
    old = config._attn_implementation
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = old
