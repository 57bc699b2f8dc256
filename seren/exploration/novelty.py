"""The novelty LLM: (last two clusters) -> novel next clusters, always a valid cluster.

Training is LoRA SFT on the transition prompts (`seren.serengpt.sft.train_sft`, the project's one
SFT trainer). Serving never trusts free text: answers are decoded through a token trie over the
valid cluster descriptions, so every answer is a cluster, and the pair's own clusters are
excluded from the trie walk, so the answer is never one the user just had.

Two ways to get the top-n novel clusters for a pair:
* ``score``: the exact log-probability of every valid description (prompt run once, its KV cache
  shared by all continuations); cost grows with the number of clusters N.
* ``beam``: constrained beam search along the trie (``prefix_allowed_tokens_fn``); cost grows
  with the beam width, not N -- the only option at the paper's scale (~760 clusters).

Quality gates (as in the paper), reported by `evaluate_novelty`: exact-match rate of
*unconstrained* greedy generations (share that is exactly a valid description, >= 90%) and
held-out recall of the true next novel cluster in the top-n (>= 1.5%), next to three baselines:
a random novel cluster, the most frequent transition for the pair, and co-occurrence.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from seren.errors import ConfigError, DataError
from seren.exploration.transitions import Transitions, transition_completion, transition_prompt
from seren.io import write_json

log = logging.getLogger(__name__)

CLUSTERS_FILE = "novelty_clusters.json"
EXACT_MATCH_GATE = 0.90
RECALL_GATE = 0.015
Pair = tuple[str, str]


# ---------------------------------------------------------------------------------------------
# token trie


class DescriptionTrie:
    """Token trie over `" " + description + <eos>` for every valid cluster.

    Each node knows which clusters lie below it, so a walk can exclude clusters (the pair's own)
    without rebuilding the trie: a child is allowed only if some non-excluded cluster is below it.
    """

    def __init__(self, tokenizer: Any, descriptions: Sequence[str]) -> None:
        if tokenizer.eos_token_id is None:
            raise ConfigError("the tokenizer has no EOS token", "use a causal-LM tokenizer with an eos_token")
        self.eos = int(tokenizer.eos_token_id)
        self.sequences: list[tuple[int, ...]] = []
        self.root: dict[str, Any] = {"children": {}, "below": set()}
        self._leaf: dict[tuple[int, ...], int] = {}
        for idx, desc in enumerate(descriptions):
            toks = tuple(tokenizer(transition_completion(desc), add_special_tokens=False)["input_ids"]) + (self.eos,)
            if toks in self._leaf:
                raise DataError(
                    f"cluster descriptions {descriptions[self._leaf[toks]]!r} and {desc!r} tokenize identically",
                    "make the cluster descriptions unique (rebuild clusters)",
                )
            self._leaf[toks] = idx
            self.sequences.append(toks)
            node = self.root
            node["below"].add(idx)
            for t in toks:
                node = node["children"].setdefault(t, {"children": {}, "below": set()})
                node["below"].add(idx)
        self.max_len = max(len(s) for s in self.sequences)

    def _node(self, prefix: Sequence[int]) -> dict[str, Any] | None:
        node = self.root
        for t in prefix:
            node = node["children"].get(int(t))
            if node is None:
                return None
        return node

    def allowed(self, prefix: Sequence[int], excluded: frozenset[int] = frozenset()) -> list[int]:
        """Next tokens that keep the walk on a non-excluded cluster (empty if off the trie)."""
        node = self._node(prefix)
        if node is None:
            return []
        return [t for t, ch in node["children"].items() if ch["below"] - excluded]

    def lookup(self, tokens: Sequence[int]) -> int | None:
        """Cluster index of a complete walk (eos included or not), else None."""
        toks = tuple(int(t) for t in tokens)
        if not toks or toks[-1] != self.eos:
            toks = toks + (self.eos,)
        return self._leaf.get(toks)


# ---------------------------------------------------------------------------------------------
# model


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


def linear_decay_lambda(warmup: int, total: int) -> Any:
    """Step -> LR factor: linear warm-up to 1, then linear decay to 0 at `total`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def linear_decay_callback() -> Any:
    """A TrainerCallback that swaps the shared trainer's constant schedule for a linear decay
    (the shared trainer's arguments stay the SerenGPT stages')."""
    from transformers import TrainerCallback

    class LinearDecay(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, lr_scheduler: Any = None, **kw: Any) -> None:
            if lr_scheduler is not None and hasattr(lr_scheduler, "lr_lambdas"):
                fn = linear_decay_lambda(int(args.warmup_steps), int(args.max_steps))
                lr_scheduler.lr_lambdas = [fn] * len(lr_scheduler.lr_lambdas)

    return LinearDecay()


def train_novelty(
    base_model: str | os.PathLike[str],
    transitions: Transitions,
    descriptions: dict[str, str],
    out_dir: str | os.PathLike[str],
    max_steps: int = 200,
    max_repeat: int = 4,
    lora_r: int = 16,
    lora_alpha: int = 32,
    learning_rate: float = 1e-3,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = False,
    lora_layers: int | None = None,
    lr_schedule: str = "linear",
) -> Path:
    """LoRA SFT on the transition prompts (the shared trainer); saves the cluster set beside the
    model so serving decodes into exactly the clusters it was trained on.

    `lr_schedule="linear"` decays the learning rate to 0 after the warm-up: the targets are samples
    of where users went next (many per pair), so at a constant rate the last steps' few samples
    decide the final ranking; decaying averages over the whole run. "constant" keeps the shared
    trainer's constant-with-warm-up rate."""
    if lr_schedule not in ("linear", "constant"):
        raise ConfigError(f"unknown lr_schedule {lr_schedule!r}", "use 'linear' or 'constant'")
    from seren.serengpt.sft import train_sft, update_model_card

    frame = transitions.sft_frame(max_repeat=max_repeat)
    unknown = sorted((set(frame["c1"]) | set(frame["c2"]) | set(frame["c_next"])) - set(descriptions))
    if unknown:
        raise DataError(
            f"transitions reference {len(unknown)} unknown cluster(s) (e.g. {unknown[0]!r})",
            "build transitions and the model from the same clusters",
        )
    model_dir = train_sft(
        base_model,
        frame[["prompt", "completion"]],
        out_dir,
        max_steps=max_steps,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        learning_rate=learning_rate,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
        lora_layers=lora_layers,
        callbacks=[linear_decay_callback()] if lr_schedule == "linear" else [],
    )
    write_json(Path(model_dir) / CLUSTERS_FILE, {"descriptions": descriptions})
    update_model_card(
        model_dir,
        stage="novelty",
        task="interest exploration: last two clusters -> novel next cluster",
        n_clusters=len(descriptions),
    )
    return Path(model_dir)


# ---------------------------------------------------------------------------------------------
# evaluation: gates + baselines


@dataclass
class Baselines:
    """Rankers fitted on the training period only (no test leakage)."""

    ids: list[str]
    pair_counts: dict[Pair, pd.Series]
    global_next: pd.Series
    cooc: pd.DataFrame
    seed: int = 0

    @classmethod
    def fit(
        cls, transitions: Transitions, sequences: pd.DataFrame | None, ids: Sequence[str], seed: int = 0
    ) -> Baselines:
        hist = transitions.history
        pair_counts = {(a, b): g["c_next"].value_counts() for (a, b), g in hist.groupby(["c1", "c2"])}
        global_next = hist["c_next"].value_counts()
        ids = list(ids)
        if sequences is not None and not sequences.empty:
            seqs = sequences[(sequences["timestamp"] < transitions.cutoff) & sequences["cluster_id"].isin(ids)]
            onehot = pd.crosstab(seqs["user_id"], seqs["cluster_id"]).clip(upper=1).reindex(columns=ids, fill_value=0)
            cooc = onehot.T @ onehot
        else:  # fall back to co-occurrence inside training triples
            long = hist.melt(id_vars=["user_id"], value_vars=["c1", "c2", "c_next"])["value"].to_frame()
            long["user_id"] = hist["user_id"].tolist() * 3
            onehot = pd.crosstab(long["user_id"], long["value"]).clip(upper=1).reindex(columns=ids, fill_value=0)
            cooc = onehot.T @ onehot
        return cls(ids=ids, pair_counts=pair_counts, global_next=global_next, cooc=cooc, seed=seed)

    def _fill(self, ranked: list[str], pair: Pair, n: int) -> list[str]:
        """Ties/short lists are completed with the globally most frequent novel clusters."""
        out = [c for c in ranked if c not in pair]
        for c in list(self.global_next.index) + self.ids:
            if len(out) >= n:
                break
            if c not in out and c not in pair:
                out.append(c)
        return out[:n]

    def random(self, pairs: Sequence[Pair], n: int) -> list[list[str]]:
        rng = np.random.default_rng(self.seed)
        out = []
        for pair in pairs:
            pool = [c for c in self.ids if c not in pair]
            out.append([pool[i] for i in rng.choice(len(pool), size=min(n, len(pool)), replace=False)])
        return out

    def most_frequent(self, pairs: Sequence[Pair], n: int) -> list[list[str]]:
        return [self._fill(list(self.pair_counts.get(p, pd.Series(dtype=int)).index), p, n) for p in pairs]

    def cooccurrence(self, pairs: Sequence[Pair], n: int) -> list[list[str]]:
        out = []
        for c1, c2 in pairs:
            s = self.cooc.get(c1, 0) + self.cooc.get(c2, 0)
            if isinstance(s, int):
                out.append(self._fill([], (c1, c2), n))
                continue
            s = s.drop([c for c in (c1, c2) if c in s.index])
            out.append(self._fill(list(s.sort_values(ascending=False, kind="stable").index), (c1, c2), n))
        return out


def recall_at(ranked: Sequence[Sequence[str]], truth: Sequence[str], k: int) -> float:
    """Share of held-out triples whose true novel cluster is in the top-k."""
    if not truth:
        return float("nan")
    return float(np.mean([t in list(r)[:k] for r, t in zip(ranked, truth, strict=True)]))


def paired_margin(hits_a: Sequence[bool], hits_b: Sequence[bool], n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Recall margin a - b over the same held-out triples with a paired-bootstrap 95% interval, so a
    win on a few dozen triples is not mistaken for a real one (the interval must clear 0)."""
    a = np.asarray(hits_a, dtype=np.float64)
    b = np.asarray(hits_b, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise DataError("paired_margin needs two equally long, non-empty hit vectors", "pass per-triple hits")
    diff = a - b
    idx = np.random.default_rng(seed).integers(0, diff.size, size=(n_boot, diff.size))
    boot = diff[idx].mean(axis=1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return {"value": float(diff.mean()), "ci95": [float(lo), float(hi)], "n": int(diff.size)}


def evaluate_novelty(
    model: NoveltyModel,
    transitions: Transitions,
    sequences: pd.DataFrame | None = None,
    n: int = 3,
    ks: Sequence[int] = (1, 3, 5, 10),
    method: str = "auto",
    max_test: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Gates + baseline table on the held-out (post-cutoff) triples.

    Returns metrics with exact_match_rate, recall@k for the LLM and each baseline, a `table`
    (markdown) and pass/fail per gate. `n` is the pair table's width: the recall gate uses it."""
    test = transitions.test
    test = test[test["c1"].isin(model.index) & test["c2"].isin(model.index)]
    if max_test is not None and len(test) > max_test:
        test = test.sample(n=max_test, random_state=seed)
    if test.empty:
        raise DataError("no held-out transitions to evaluate", "raise test_frac when building transitions")
    truth = test["c_next"].tolist()
    pairs = list(zip(test["c1"], test["c2"], strict=True))
    uniq = sorted(set(pairs))
    kmax = max(max(ks), n)
    ranked_u = {p: [c for c, _ in r] for p, r in zip(uniq, model.top_novel(uniq, n=kmax, method=method), strict=True)}
    llm = [ranked_u[p] for p in pairs]
    gens = model.generate(uniq)
    valid = set(model.descriptions)
    gen_by_pair = dict(zip(uniq, gens, strict=True))
    exact = float(np.mean([gen_by_pair[p] in valid for p in pairs]))
    novel_valid = float(
        np.mean([gen_by_pair[p] in valid and model.by_description[gen_by_pair[p]] not in p for p in pairs])
    )
    base = Baselines.fit(
        transitions, sequences if sequences is not None else transitions.sequences, model.ids, seed=seed
    )
    rankers = {
        "novelty_llm": llm,
        "random_novel": base.random(pairs, kmax),
        "most_frequent_for_pair": base.most_frequent(pairs, kmax),
        "cooccurrence": base.cooccurrence(pairs, kmax),
    }
    rows = {name: {f"recall@{k}": recall_at(r, truth, k) for k in sorted(set(ks) | {n})} for name, r in rankers.items()}
    key = f"recall@{n}"
    best_name = max((name for name in rows if name != "novelty_llm"), key=lambda name: rows[name][key])
    best_baseline = rows[best_name][key]
    llm_recall = rows["novelty_llm"][key]
    margin = paired_margin(
        [t in list(r)[:n] for r, t in zip(llm, truth, strict=True)],
        [t in list(r)[:n] for r, t in zip(rankers[best_name], truth, strict=True)],
        seed=seed,
    )
    table = ["| ranker | " + " | ".join(rows["novelty_llm"]) + " |", "|---|" + "---|" * len(rows["novelty_llm"])]
    for name, v in rows.items():
        table.append(f"| {name} | " + " | ".join(f"{x:.3f}" for x in v.values()) + " |")
    return {
        "n_test": len(test),
        "n_test_pairs": len(uniq),
        "n_clusters": len(model.ids),
        "n": n,
        "exact_match_rate": exact,
        "unconstrained_valid_novel_rate": novel_valid,
        "recall": rows,
        "llm_recall": llm_recall,
        "best_baseline_recall": best_baseline,
        "gates": {
            "exact_match": {"value": exact, "target": EXACT_MATCH_GATE, "passed": exact >= EXACT_MATCH_GATE},
            "recall": {"value": llm_recall, "target": RECALL_GATE, "passed": llm_recall >= RECALL_GATE},
            "beats_baselines": {
                "value": llm_recall - best_baseline,
                "passed": llm_recall > best_baseline,
                "best_baseline": best_name,
                "ci95": margin["ci95"],
                "significant": margin["ci95"][0] > 0,
            },
        },
        "table": "\n".join(table),
        "examples": [{"pair": list(p), "generated": gen_by_pair[p]} for p in uniq[:5]],
    }
