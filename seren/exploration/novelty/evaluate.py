"""Evaluation of the novelty LLM: the paper's gates (exact-match rate of unconstrained generations,
held-out recall of the true next novel cluster) next to three baselines fitted on training data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seren.errors import DataError
from seren.exploration.novelty.model import NoveltyModel
from seren.exploration.novelty.trie import Pair
from seren.exploration.transitions import Transitions

EXACT_MATCH_GATE = 0.90
RECALL_GATE = 0.015


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
