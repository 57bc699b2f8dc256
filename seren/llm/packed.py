"""Packing: one user's candidates in one sequence, sharing the system text + profile once.

A per-pair prompt is `shared + tail_i` where `shared` (system text, profile, the start of the
user message) is identical for all of a user's candidates. A *pack* is `shared + tail_1 + ... +
tail_k`, scored in one forward pass with a mask that lets each candidate see the shared part and
itself (causally) but no other candidate, positions that continue from the shared part as if the
candidate were alone, and P(Yes) read at the last token of each tail. That is exactly the
per-pair computation, so the scores equal per-pair scores up to float rounding, while the shared
tokens are computed once per pack instead of once per candidate.

Segment ids encode a row (standard library + numpy only; the Triton packer model ships this
file as is): the k-th pack's shared part is -(k+1), candidate slot j of the row is j+1, padding
is 0. One row usually holds one pack; a row may hold several packs back to back (each with its
own copy of the shared part) and the attention keeps them apart. The attention layout and the
positions are built from the segment ids inside the model (`seren.llm.blocksparse.pack_layout`),
so the exported graph needs only (input_ids, segment_ids, answer_index).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

try:  # inside seren: a one-line user error; in the Triton venv (no seren): a ValueError
    from seren.errors import DataError as PackError
except ImportError:  # pragma: no cover - exercised in the Triton python backend

    class PackError(ValueError):  # type: ignore[no-redef]
        def __init__(self, problem: str, fix: str | None = None) -> None:
            super().__init__(f"{problem}. Fix: {fix}" if fix else problem)


DEFAULT_MAX_LEN = 2048
PAD_SEGMENT = 0


@dataclass
class Pack:
    """One packed sequence: ids, segment ids, the answer index of each candidate, their input order."""

    input_ids: list[int] = field(default_factory=list)
    segment_ids: list[int] = field(default_factory=list)
    answer_index: list[int] = field(default_factory=list)
    candidates: list[int] = field(default_factory=list)


def common_prefix_len(rows: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix every row shares."""
    if not rows:
        return 0
    first, n = rows[0], min(len(r) for r in rows)
    for other in rows[1:]:
        k = 0
        while k < n and other[k] == first[k]:
            k += 1
        n = k
    return n


def split_shared(rows: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """(shared, tails) of one user's full per-pair prompts; every tail keeps >= 1 token (its answer slot).

    Splitting the token lists (not the texts) keeps the ids exactly those of per-pair prompts,
    whatever the tokenizer merges at the profile/candidate boundary.
    """
    if not rows:
        raise PackError("empty candidate list: nothing to score", "pass at least one candidate item")
    if any(len(r) == 0 for r in rows):
        raise PackError("a prompt encoded to no tokens", "give every candidate a non-empty text")
    n = min(common_prefix_len(rows), min(len(r) for r in rows) - 1)
    return [int(t) for t in rows[0][:n]], [[int(t) for t in r[n:]] for r in rows]


def plan_packs(n_shared: int, tail_lens: Sequence[int], max_len: int) -> list[list[int]]:
    """Greedy, order-preserving: candidate indices per pack so that shared + tails <= max_len."""
    if not tail_lens:
        raise PackError("empty candidate list: nothing to score", "pass at least one candidate item")
    if max_len < 2:
        raise PackError(f"max pack length must be >= 2, got {max_len}", "pass a larger max_len")
    packs: list[list[int]] = []
    used = max_len + 1
    for i, n in enumerate(tail_lens):
        if n_shared + n > max_len:
            raise PackError(
                f"candidate #{i} needs {n_shared + n} tokens with its profile, over the pack limit of {max_len}",
                "shorten the item or profile text, or raise the maximum pack length",
            )
        if used + n > max_len:
            packs.append([])
            used = n_shared
        packs[-1].append(i)
        used += n
    return packs


def pack_user(shared: Sequence[int], tails: Sequence[Sequence[int]], max_len: int = DEFAULT_MAX_LEN) -> list[Pack]:
    """One user's packs (each a one-pack row): shared part once, then candidates in order."""
    out = []
    for idx in plan_packs(len(shared), [len(t) for t in tails], max_len):
        p = Pack(input_ids=list(shared), segment_ids=[-1] * len(shared))
        for slot, i in enumerate(idx, start=1):
            p.input_ids.extend(tails[i])
            p.segment_ids.extend([slot] * len(tails[i]))
            p.answer_index.append(len(p.input_ids) - 1)
            p.candidates.append(i)
        out.append(p)
    return out


def join_packs(packs: Sequence[Pack]) -> Pack:
    """Several packs back to back in one row (pack k's shared part gets segment -(k+1)); for
    servers that take one row per user. The mask keeps the packs apart."""
    row = Pack()
    slot = 0
    for k, p in enumerate(packs):
        base = len(row.input_ids)
        for s in p.segment_ids:
            row.segment_ids.append(-(k + 1) if s < 0 else s + slot)
        row.input_ids.extend(p.input_ids)
        row.answer_index.extend(base + a for a in p.answer_index)
        row.candidates.extend(p.candidates)
        slot += len(p.answer_index)
    return row


def split_row(input_ids: Sequence[int], segment_ids: Sequence[int], answer_index: Sequence[int]) -> list[Pack]:
    """Inverse of join_packs for one (padded) row: its packs, `candidates` = slot indices in the row.

    Answer slots beyond the row's highest candidate segment are padding and are dropped.
    """
    seg = [int(s) for s in segment_ids]
    end = len(seg)
    while end and seg[end - 1] == PAD_SEGMENT:
        end -= 1
    if not end or seg[0] >= 0:
        raise PackError("a packed row must start with its shared part (segment id < 0)", "build rows with join_packs")
    starts = [t for t in range(end) if seg[t] < 0 and (t == 0 or seg[t - 1] != seg[t])]
    n_slots = max(seg[:end])
    if n_slots < 1:
        raise PackError("a packed row holds no candidate", "pass at least one candidate item")
    packs = [Pack() for _ in starts]
    bounds = list(zip(starts, starts[1:] + [end], strict=True))
    for p, (a, b) in zip(packs, bounds, strict=True):
        p.input_ids = [int(t) for t in input_ids[a:b]]
    first_slot: list[int] = []
    for p, (a, b) in zip(packs, bounds, strict=True):
        cands = [s for s in seg[a:b] if s > 0]
        lo = min(cands) if cands else 1
        first_slot.append(lo)
        p.segment_ids = [-1 if s < 0 else s - lo + 1 for s in seg[a:b]]
    for j in range(n_slots):
        t = int(answer_index[j])
        k = max(i for i, (a, _) in enumerate(bounds) if a <= t)
        packs[k].answer_index.append(t - bounds[k][0])
        packs[k].candidates.append(j)
    return [p for p in packs if p.candidates]


def _round_up(n: int, k: int) -> int:
    return -(-n // max(1, k)) * max(1, k)


def to_arrays(
    packs: Sequence[Pack], pad_id: int, pad_to_multiple_of: int = 1, slots_multiple_of: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right-padded int64 (input_ids [N,L], segment_ids [N,L], answer_index [N,C]); unused slots -> 0."""
    width = _round_up(max(len(p.input_ids) for p in packs), pad_to_multiple_of)
    slots = _round_up(max(len(p.answer_index) for p in packs), slots_multiple_of)
    ids = np.full((len(packs), width), pad_id, dtype=np.int64)
    seg = np.full((len(packs), width), PAD_SEGMENT, dtype=np.int64)
    ans = np.zeros((len(packs), slots), dtype=np.int64)
    for r, p in enumerate(packs):
        ids[r, : len(p.input_ids)] = p.input_ids
        seg[r, : len(p.segment_ids)] = p.segment_ids
        ans[r, : len(p.answer_index)] = p.answer_index
    return ids, seg, ans


def batch_packs(packs: Sequence[Pack], max_tokens: int) -> list[list[int]]:
    """Indices of packs per forward pass: similar lengths together, rows x width <= max_tokens."""
    order = sorted(range(len(packs)), key=lambda i: len(packs[i].input_ids))
    batches: list[list[int]] = []
    for i in order:
        n = len(packs[i].input_ids)
        if batches and (len(batches[-1]) + 1) * n <= max_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches
