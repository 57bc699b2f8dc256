"""P(serendipitous) = softmax over the Yes/No logits at the answer position.

A causal LM's forward computes vocabulary logits at every position; a judgment needs two logits
at one position. `ScoringHead` runs the decoder body once, keeps the last real position and
multiplies it by the Yes/No rows of the LM head only. It is what gets exported to ONNX and served.

`PackedScoringHead` scores all of a user's candidates in one sequence (seren.llm.packed): the
shared part (system text + profile) once, then every candidate, under a mask built from segment
ids so that each candidate sees only the shared part and itself. It is what the default
`SerenScorer.score(mode="packed")` runs and what the packed ONNX graph / Triton ensemble serve.
`mode="prefix"` runs a batch's common token prefix once and reuses its key/value cache;
`mode="pair"` scores every prompt on its own. All three agree up to float rounding.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from seren.errors import SerenError
from seren.llm.blocksparse import pack_layout, packed_attention_on
from seren.llm.packed import DEFAULT_MAX_LEN, Pack, batch_packs, pack_user, split_shared, to_arrays
from seren.llm.prompts import answer_token_ids, build_prompt

# Below this many shared tokens the cache bookkeeping costs more than it saves.
MIN_SHARED_PREFIX = 16


def _additive_mask(keep_q: torch.Tensor, keep_kv: torch.Tensor, n_prefix: int, dtype: torch.dtype) -> torch.Tensor:
    """[B,1,Q,P+Q] float mask: causal over the Q new tokens, all P prefix tokens visible, pads hidden.

    Built here (not by transformers) so it traces to ONNX and uses a finite minimum: a pad row that
    sees nothing gets uniform attention instead of NaN, which would leak through 0 * NaN.
    """
    q = keep_q.shape[1]
    causal = torch.ones(q, q, dtype=torch.bool, device=keep_q.device).tril()
    allowed = causal[None, None] & keep_q.bool()[:, None, None, :]
    if n_prefix:
        b = keep_q.shape[0]
        pre = keep_kv.bool()[:, None, None, :n_prefix].expand(b, 1, q, n_prefix)
        allowed = torch.cat([pre, allowed], dim=-1)
    return torch.zeros_like(allowed, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)


class ScoringHead(nn.Module):
    """(input_ids, attention_mask) -> P(Yes) float32 [B]; left or right padding."""

    def __init__(self, model: Any, yes_id: int, no_id: int) -> None:
        super().__init__()
        self.decoder = model.get_decoder()
        head = model.get_output_embeddings()
        if head is None or self.decoder is model:
            raise SerenError(
                f"{type(model).__name__} has no separate decoder and LM head",
                "use a causal LM (a *ForCausalLM model)",
            )
        ids = torch.tensor([int(yes_id), int(no_id)])
        # A copy of two rows: the full vocabulary projection is never computed.
        self.register_buffer("rows", head.weight.detach()[ids].clone(), persistent=False)
        bias = getattr(head, "bias", None)
        self.register_buffer(
            "bias",
            bias.detach()[ids].clone() if bias is not None else torch.zeros(2, dtype=self.rows.dtype),
            persistent=False,
        )
        self.yes_id, self.no_id = int(yes_id), int(no_id)

    def answer_hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The final hidden state at each row's answer slot: the vector the Yes/No rows meet."""
        mask = attention_mask.to(torch.long)
        # Positions count real tokens only, so a left-padded row sees the same positions as unpadded.
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        attn = _additive_mask(mask, mask, 0, self.rows.dtype)
        hidden = self.decoder(input_ids=input_ids, attention_mask=attn, position_ids=pos, use_cache=False)[0]
        # Last real token of each row: index T-1 under left padding, len-1 under right padding.
        steps = torch.arange(mask.shape[1], device=mask.device)
        last = (mask * steps).argmax(-1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]

    def yes_no_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.answer_hidden(input_ids, attention_mask) @ self.rows.t() + self.bias

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.yes_no_logits(input_ids, attention_mask).float(), dim=-1)[:, 0]


class PackedScoringHead(nn.Module):
    """(input_ids [B,L], segment_ids [B,L], answer_index [B,C]) -> P(Yes) float32 [B,C].

    Shares the decoder and the two LM-head rows of a ScoringHead. The attention layout and the
    position ids are derived from the segment ids inside the module, so they are part of the
    exported graph; attention is block-sparse (seren.llm.blocksparse: a candidate's queries meet
    only its pack's shared keys and its own), and only the answer positions meet the Yes/No rows.
    """

    def __init__(self, head: ScoringHead) -> None:
        super().__init__()
        self.decoder = head.decoder
        self.register_buffer("rows", head.rows, persistent=False)
        self.register_buffer("bias", head.bias, persistent=False)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor, answer_index: torch.Tensor) -> torch.Tensor:
        layout, pos = pack_layout(segment_ids, answer_index, self.rows.dtype)
        # A 4D mask is passed through untouched by transformers; the real masks live in the layout.
        dummy = torch.zeros(1, 1, 1, 1, dtype=self.rows.dtype, device=input_ids.device)
        with packed_attention_on(self.decoder.config):
            hidden = self.decoder(
                input_ids=input_ids, attention_mask=dummy, position_ids=pos, use_cache=False, seren_layout=layout
            )[0]
        idx = answer_index.to(torch.int64)[..., None].expand(-1, -1, hidden.shape[-1])
        h = torch.gather(hidden, 1, idx)
        return torch.softmax((h @ self.rows.t() + self.bias).float(), dim=-1)[..., 0]


def _as_lists(profile_texts: Sequence[str] | str, item_texts: Sequence[str] | str) -> tuple[list[str], list[str]]:
    items = [item_texts] if isinstance(item_texts, str) else list(item_texts)
    profiles = [profile_texts] * len(items) if isinstance(profile_texts, str) else list(profile_texts)
    if not items:
        raise SerenError("empty candidate list: nothing to score", "pass at least one candidate item")
    if len(profiles) != len(items):
        raise SerenError(
            f"{len(profiles)} profile texts for {len(items)} item texts",
            "pass one profile per item (or a single profile string for all items)",
        )
    for name, texts in (("profile", profiles), ("item", items)):
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
        if bad:
            raise SerenError(f"{name} text #{bad[0]} is empty or not a string", f"give every {name} a non-empty text")
    return profiles, items


class SerenScorer:
    """SerenGPT judgments for (profile, item) pairs, batched on CPU in fp32."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        try:
            self.yes_id, self.no_id = answer_token_ids(tokenizer)
        except ValueError as e:
            raise SerenError(f"cannot score with this tokenizer: {e}", "use a tokenizer that encodes Yes and No") from e
        self.head = ScoringHead(model, self.yes_id, self.no_id).eval()
        self.packed_head = PackedScoringHead(self.head).eval()

    @classmethod
    def from_pretrained(
        cls, model_dir: str | os.PathLike[str], dtype: torch.dtype = torch.float32, device: str | None = None
    ) -> SerenScorer:
        """Load a merged model dir (or 'smollm2'); `device="cuda"` for a GPU, CPU by default."""
        from seren.llm.base import load_causal_lm

        model, tok = load_causal_lm(model_dir, dtype=dtype)
        if device is not None:
            if str(device).startswith("cuda") and not torch.cuda.is_available():
                raise SerenError(f"device {device!r} requested but no CUDA GPU is available", "omit --device (CPU)")
            model = model.to(device)
        return cls(model, tok)

    @property
    def device(self) -> torch.device:
        return self.head.rows.device

    def prompts(self, profile_texts: Sequence[str] | str, item_texts: Sequence[str] | str) -> list[str]:
        profiles, items = _as_lists(profile_texts, item_texts)
        return [build_prompt(self.tokenizer, p, i) for p, i in zip(profiles, items, strict=True)]

    def encode(
        self, profile_texts: Sequence[str] | str, item_texts: Sequence[str] | str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded int64 (input_ids, attention_mask): the answer slot is the last column."""
        enc = self.tokenizer(self.prompts(profile_texts, item_texts), padding=True, return_tensors="pt")
        return enc["input_ids"].to(torch.int64), enc["attention_mask"].to(torch.int64)

    def _token_lists(self, prompts: list[str]) -> list[list[int]]:
        return [list(x) for x in self.tokenizer(prompts, padding=False)["input_ids"]]

    def _pad_left(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        pad = int(self.tokenizer.pad_token_id)
        ids = torch.full((len(rows), width), pad, dtype=torch.int64)
        mask = torch.zeros((len(rows), width), dtype=torch.int64)
        for i, r in enumerate(rows):
            if r:
                ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.int64)
                mask[i, width - len(r) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _score_shared_prefix(self, rows: list[list[int]], n_prefix: int) -> torch.Tensor:
        """Run the common prefix once (batch 1), reuse its KV cache for every row's suffix."""
        from transformers import DynamicCache

        dec = self.head.decoder
        prefix = torch.tensor([rows[0][:n_prefix]], dtype=torch.int64, device=self.device)
        cache = DynamicCache(config=self.model.config)
        dec(input_ids=prefix, past_key_values=cache, use_cache=True)
        cache.batch_repeat_interleave(len(rows))
        ids, mask = self._pad_left([r[n_prefix:] for r in rows])
        pos = n_prefix + (mask.cumsum(-1) - 1).clamp(min=0)
        full = torch.cat([torch.ones(len(rows), n_prefix, dtype=mask.dtype, device=mask.device), mask], dim=1)
        attn = _additive_mask(mask, full, n_prefix, self.head.rows.dtype)
        hidden = dec(input_ids=ids, attention_mask=attn, position_ids=pos, past_key_values=cache, use_cache=True)[0]
        logits = hidden[:, -1] @ self.head.rows.t() + self.head.bias
        return torch.softmax(logits.float(), dim=-1)[:, 0]

    def answer_states(self, prompts: Sequence[str], batch_size: int = 16, progress: bool | None = None) -> np.ndarray:
        """Final hidden states at the answer slot of rendered prompts, float32 [N, hidden], input order
        (what a head fit learns from: seren.serengpt.head)."""
        rows = self._token_lists(list(prompts))
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))  # similar lengths share a batch: less padding
        out = np.empty((len(rows), int(self.head.rows.shape[1])), dtype=np.float32)
        show = progress if progress is not None else (len(rows) >= 512 and sys.stderr.isatty())
        from rich.progress import Progress

        with torch.inference_mode(), Progress(transient=True, disable=not show) as bar:
            task = bar.add_task("hidden states", total=len(rows))
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                h = self.head.answer_hidden(*self._pad_left([rows[i] for i in idx]))
                out[idx] = h.float().cpu().numpy()
                bar.advance(task, len(idx))
        return out

    def _batches(self, rows: list[list[int]], keys: list[str], batch_size: int) -> list[list[int]]:
        """One user's candidates per batch (they share system prompt + profile); lone rows packed by length."""
        groups: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(k, []).append(i)
        batches: list[list[int]] = []
        singles: list[int] = []
        for idx in groups.values():
            if len(idx) == 1:
                singles.extend(idx)
                continue
            idx.sort(key=lambda i: len(rows[i]))
            batches.extend(idx[s : s + batch_size] for s in range(0, len(idx), batch_size))
        singles.sort(key=lambda i: len(rows[i]))
        batches.extend(singles[s : s + batch_size] for s in range(0, len(singles), batch_size))
        return batches

    @staticmethod
    def _common_prefix(rows: list[list[int]]) -> int:
        first, n = rows[0], min(len(r) for r in rows)
        for other in rows[1:]:
            k = 0
            while k < n and other[k] == first[k]:
                k += 1
            n = k
        return n

    def pack(
        self, profile_texts: Sequence[str] | str, item_texts: Sequence[str] | str, max_len: int = DEFAULT_MAX_LEN
    ) -> list[Pack]:
        """Packs of all pairs: pairs with the same profile text are one user; `candidates` are input rows."""
        profiles, items = _as_lists(profile_texts, item_texts)
        rows = self._token_lists(self.prompts(profiles, items))
        users: dict[str, list[int]] = {}
        for i, p in enumerate(profiles):
            users.setdefault(p, []).append(i)
        out: list[Pack] = []
        for idx in users.values():
            shared, tails = split_shared([rows[i] for i in idx])
            for p in pack_user(shared, tails, max_len):
                p.candidates = [idx[c] for c in p.candidates]
                out.append(p)
        return out

    def score_packed(
        self,
        profile_texts: Sequence[str] | str,
        item_texts: Sequence[str] | str,
        max_len: int = DEFAULT_MAX_LEN,
        max_tokens: int | None = None,
    ) -> np.ndarray:
        """P(Yes) per pair, one forward per pack (a user's shared part once); float32, input order.

        max_tokens: padded tokens per forward (several small packs batched); default max_len.
        """
        packs = self.pack(profile_texts, item_texts, max_len)
        out = np.empty(sum(len(p.candidates) for p in packs), dtype=np.float32)
        pad = int(self.tokenizer.pad_token_id)
        with torch.inference_mode():
            for b in batch_packs(packs, max_tokens or max_len):
                ids, seg, ans = (torch.from_numpy(a).to(self.device) for a in to_arrays([packs[i] for i in b], pad))
                probs = self.packed_head(ids, seg, ans).float().cpu().numpy()
                for r, i in enumerate(b):
                    out[packs[i].candidates] = probs[r, : len(packs[i].candidates)]
        return out

    def score(
        self,
        profile_texts: Sequence[str] | str,
        item_texts: Sequence[str] | str,
        batch_size: int = 16,
        share_prefix: bool = True,
        progress: bool | None = None,
        mode: str = "packed",
        max_len: int = DEFAULT_MAX_LEN,
    ) -> np.ndarray:
        """P(Yes) per (profile, item) pair, float32, in input order.

        mode: "packed" (default: one sequence per user, see PackedScoringHead), "prefix" (batches
        of a user's prompts reusing the common prefix's KV cache) or "pair" (every prompt alone;
        also what share_prefix=False selects).
        """
        if mode not in ("packed", "prefix", "pair"):
            raise SerenError(f"unknown scoring mode {mode!r}", "use packed, prefix or pair")
        if batch_size < 1:
            raise SerenError(f"batch_size must be >= 1, got {batch_size}", "pass a positive batch size")
        if mode == "packed" and share_prefix:
            return self.score_packed(profile_texts, item_texts, max_len=max_len)
        share_prefix = share_prefix and mode == "prefix"
        profiles, items = _as_lists(profile_texts, item_texts)
        rows = self._token_lists(self.prompts(profiles, items))
        out = np.empty(len(rows), dtype=np.float32)
        batches = self._batches(rows, profiles, batch_size)
        show = progress if progress is not None else (len(rows) >= 512 and sys.stderr.isatty())
        from rich.progress import Progress

        with torch.inference_mode(), Progress(transient=True, disable=not show) as bar:
            task = bar.add_task("scoring", total=len(rows))
            for idx in batches:
                batch = [rows[i] for i in idx]
                # Keep >= 1 token per row after the prefix: the answer slot must be computed per row.
                n_prefix = min(self._common_prefix(batch), min(len(r) for r in batch) - 1)
                if share_prefix and len(batch) > 1 and n_prefix >= MIN_SHARED_PREFIX:
                    probs = self._score_shared_prefix(batch, n_prefix)
                else:
                    probs = self.head(*self._pad_left(batch))
                out[idx] = probs.float().cpu().numpy()
                bar.advance(task, len(idx))
        return out

    def naive_score(
        self, profile_texts: Sequence[str] | str, item_texts: Sequence[str] | str, batch_size: int = 16
    ) -> np.ndarray:
        """Reference: full-vocabulary logits at every position, then pick Yes/No at the last one."""
        profiles, items = _as_lists(profile_texts, item_texts)
        out = []
        with torch.inference_mode():
            for s in range(0, len(items), batch_size):
                ids, mask = self.encode(profiles[s : s + batch_size], items[s : s + batch_size])
                ids, mask = ids.to(self.device), mask.to(self.device)
                pos = (mask.cumsum(-1) - 1).clamp(min=0)
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits
                pair = logits[:, -1, [self.yes_id, self.no_id]]
                out.append(torch.softmax(pair.float(), dim=-1)[:, 0].cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def generate_score(self, profile_texts: Sequence[str] | str, item_texts: Sequence[str] | str) -> np.ndarray:
        """Reference: `generate()` one new token per item (no batching), Yes/No from its raw logits."""
        from transformers import GenerationConfig

        gen = GenerationConfig(
            max_new_tokens=1,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        out = []
        with torch.inference_mode():
            for prompt in self.prompts(profile_texts, item_texts):
                enc = self.tokenizer(prompt, return_tensors="pt").to(self.device)
                res = self.model.generate(**enc, generation_config=gen)
                pair = res.logits[0][0, [self.yes_id, self.no_id]]
                out.append(float(torch.softmax(pair.float(), dim=-1)[0]))
        return np.asarray(out, dtype=np.float32)
