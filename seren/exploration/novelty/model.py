"""The novelty LLM at serving time: a fine-tuned causal LM plus the cluster set it answers in;
top-n novel clusters by exact scoring of every description or constrained beam search."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seren.errors import ConfigError, DataError
from seren.exploration.novelty.trie import DescriptionTrie, Pair
from seren.exploration.transitions import transition_prompt

log = logging.getLogger(__name__)

CLUSTERS_FILE = "novelty_clusters.json"


class NoveltyModel:
    """A fine-tuned causal LM plus the cluster set it answers in."""

    def __init__(self, model: Any, tokenizer: Any, descriptions: dict[str, str]) -> None:
        if len(descriptions) < 3:
            raise DataError(
                f"only {len(descriptions)} clusters", "a novel cluster needs at least 3 clusters (2 in the pair + 1)"
            )
        if len(set(descriptions.values())) != len(descriptions):
            raise DataError(
                "cluster descriptions are not unique", "rebuild clusters (build_clusters guarantees uniqueness)"
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.ids = list(descriptions)
        self.descriptions = [descriptions[c] for c in self.ids]
        self.index = {c: i for i, c in enumerate(self.ids)}
        self.by_description = {d: c for c, d in descriptions.items()}
        self.trie = DescriptionTrie(tokenizer, self.descriptions)
        self.device = next(model.parameters()).device

    @classmethod
    def from_pretrained(
        cls, model_dir: str | os.PathLike[str], descriptions: dict[str, str] | None = None
    ) -> NoveltyModel:
        """Load a model dir; the cluster set is the one saved beside it unless given."""
        from seren.llm.base import load_causal_lm

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file() and (model_dir / "model" / "config.json").is_file():
            model_dir = model_dir / "model"  # a train_novelty stage dir
        if descriptions is None:
            f = model_dir / CLUSTERS_FILE
            if not f.is_file():
                raise DataError(
                    f"{model_dir} has no {CLUSTERS_FILE}",
                    "train it with train_novelty or pass the cluster descriptions",
                )
            descriptions = json.loads(f.read_text())["descriptions"]
        model, tok = load_causal_lm(model_dir)
        return cls(model, tok, descriptions)

    # -- helpers
    def _check_pairs(self, pairs: Sequence[Pair]) -> None:
        for c1, c2 in pairs:
            for c in (c1, c2):
                if c not in self.index:
                    raise DataError(
                        f"unknown cluster {c!r}", "use cluster ids of the clusters the novelty model was trained with"
                    )

    def prompt(self, pair: Pair) -> str:
        return transition_prompt(self.descriptions[self.index[pair[0]]], self.descriptions[self.index[pair[1]]])

    def _excluded(self, pair: Pair) -> frozenset[int]:
        return frozenset({self.index[pair[0]], self.index[pair[1]]})

    # -- exact scoring
    @torch.inference_mode()
    def score_pairs(self, pairs: Sequence[Pair], max_rows: int = 256) -> np.ndarray:
        """log P(description + eos | prompt) for every cluster: [len(pairs), N]; the pair's own
        clusters get -inf. The prompt runs once per pair and its KV cache serves all N answers."""
        from transformers import DynamicCache

        self._check_pairs(pairs)
        n = len(self.ids)
        seqs = self.trie.sequences
        width = max(len(s) for s in seqs)
        cont = torch.full((n, width), int(self.tokenizer.pad_token_id or 0), dtype=torch.int64)
        mask = torch.zeros((n, width), dtype=torch.bool)
        for i, s in enumerate(seqs):
            cont[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = True
        cont, mask = cont.to(self.device), mask.to(self.device)
        out = np.full((len(pairs), n), -np.inf, dtype=np.float64)
        for p, pair in enumerate(pairs):
            ids = torch.tensor([self.tokenizer(self.prompt(pair))["input_ids"]], dtype=torch.int64, device=self.device)
            plen = ids.shape[1]
            cache = DynamicCache(config=self.model.config)
            res = self.model(input_ids=ids, past_key_values=cache, use_cache=True)
            first = torch.log_softmax(res.logits[0, -1].float(), dim=-1)
            kv = [(layer.keys, layer.values) for layer in cache.layers]
            total = first[cont[:, 0]].double()
            for start in range(0, n, max_rows):
                rows = slice(start, min(n, start + max_rows))
                r = rows.stop - rows.start
                if width > 1:
                    sub = DynamicCache(
                        ddp_cache_data=[
                            (k.expand(r, -1, -1, -1).contiguous(), v.expand(r, -1, -1, -1).contiguous()) for k, v in kv
                        ],
                        config=self.model.config,
                    )
                    inp = cont[rows, :-1]
                    pos = (plen + torch.arange(width - 1, device=self.device)).unsqueeze(0).expand(r, -1)
                    logits = self.model(
                        input_ids=inp, position_ids=pos, past_key_values=sub, use_cache=True
                    ).logits.float()
                    lp = torch.log_softmax(logits, dim=-1).gather(-1, cont[rows, 1:].unsqueeze(-1)).squeeze(-1)
                    total[rows] += (lp * mask[rows, 1:]).sum(dim=1).double()
            scores = total.cpu().numpy()
            scores[list(self._excluded(pair))] = -np.inf
            out[p] = scores
        return out

    # -- constrained / unconstrained generation
    def _encode_batch(self, pairs: Sequence[Pair]) -> dict[str, torch.Tensor]:
        self.tokenizer.padding_side = "left"
        enc = self.tokenizer([self.prompt(p) for p in pairs], return_tensors="pt", padding=True)
        return {k: v.to(self.device) for k, v in enc.items()}

    @torch.inference_mode()
    def beam_top_novel(
        self, pairs: Sequence[Pair], n: int, n_beams: int | None = None
    ) -> list[list[tuple[str, float]]]:
        """Constrained beam search: up to n distinct novel clusters per pair with their log-probs."""
        self._check_pairs(pairs)
        n_beams = max(n, n_beams or n)
        enc = self._encode_batch(pairs)
        plen = enc["input_ids"].shape[1]
        excl = [self._excluded(p) for p in pairs]
        eos = self.trie.eos

        def allowed(batch_id: int, input_ids: torch.Tensor) -> list[int]:
            return self.trie.allowed(input_ids[plen:].tolist(), excl[batch_id]) or [eos]

        gen = self.model.generate(
            **enc,
            max_new_tokens=self.trie.max_len,
            num_beams=n_beams,
            num_return_sequences=n_beams,
            do_sample=False,
            length_penalty=0.0,
            early_stopping=True,
            prefix_allowed_tokens_fn=allowed,
            eos_token_id=eos,
            pad_token_id=int(self.tokenizer.pad_token_id),
            output_scores=True,
            return_dict_in_generate=True,
        )
        seqs = gen.sequences[:, plen:].tolist()
        scores = gen.sequences_scores.tolist()
        out: list[list[tuple[str, float]]] = []
        for b in range(len(pairs)):
            got: list[tuple[str, float]] = []
            for j in range(b * n_beams, (b + 1) * n_beams):
                toks = seqs[j]
                if eos in toks:
                    toks = toks[: toks.index(eos) + 1]
                idx = self.trie.lookup(toks)
                if idx is None or idx in excl[b] or any(self.index[c] == idx for c, _ in got):
                    continue
                got.append((self.ids[idx], float(scores[j])))
            out.append(sorted(got, key=lambda x: -x[1])[:n])
        return out

    def top_novel(
        self, pairs: Sequence[Pair], n: int = 3, method: str = "auto", n_beams: int | None = None
    ) -> list[list[tuple[str, float]]]:
        """Top-n novel clusters per pair as (cluster_id, log-prob), best first; never c1 or c2."""
        if n < 1:
            raise ConfigError(f"n must be >= 1 (got {n})", "ask for at least one novel cluster")
        n = min(n, len(self.ids) - 2)
        if method == "auto":
            method = "score" if len(self.ids) <= 128 else "beam"
        if method == "beam":
            return self.beam_top_novel(pairs, n, n_beams)
        if method != "score":
            raise ConfigError(f"unknown method {method!r}", "use 'score', 'beam' or 'auto'")
        s = self.score_pairs(pairs)
        order = np.argsort(-s, axis=1, kind="stable")[:, :n]
        return [[(self.ids[j], float(s[i, j])) for j in order[i]] for i in range(len(pairs))]

    @torch.inference_mode()
    def generate(self, pairs: Sequence[Pair], constrained: bool = False, batch_size: int = 16) -> list[str]:
        """Greedy answers as text. Unconstrained answers are whatever the model writes (what the
        exact-match gate measures); constrained answers always name a valid novel cluster."""
        self._check_pairs(pairs)
        eos = self.trie.eos
        out: list[str] = []
        for start in range(0, len(pairs), batch_size):
            chunk = list(pairs[start : start + batch_size])
            enc = self._encode_batch(chunk)
            plen = enc["input_ids"].shape[1]
            kw: dict[str, Any] = {}
            if constrained:
                excl = [self._excluded(p) for p in chunk]

                def allowed(
                    batch_id: int, input_ids: torch.Tensor, excl: list[frozenset[int]] = excl, plen: int = plen
                ) -> list[int]:
                    return self.trie.allowed(input_ids[plen:].tolist(), excl[batch_id]) or [eos]

                kw["prefix_allowed_tokens_fn"] = allowed
            gen = self.model.generate(
                **enc,
                max_new_tokens=self.trie.max_len + 4,
                do_sample=False,
                num_beams=1,
                eos_token_id=eos,
                pad_token_id=int(self.tokenizer.pad_token_id),
                **kw,
            )
            for row in gen[:, plen:]:
                text = self.tokenizer.decode(row, skip_special_tokens=True)
                out.append(text.strip().split("\n")[0].strip())
        return out


# ---------------------------------------------------------------------------------------------
# training
