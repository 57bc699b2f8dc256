"""Judges for the serendipity channel: who scores a user's serendipity candidates.

SmolLM2 SerenGPT scores a few items per second on this 2-core CPU, so a 1000-user x 20-round
simulation cannot call it for every candidate. The judge is therefore pluggable, and every
report names the judge behind the serendipity arms' numbers:

* ``serengpt``: the real SerenGPT scorer, in process, from a model dir (prompts built from the
  arm's own log with the cognition profiles, as nearline does). Small configurations and tests.
* ``heuristic``: the project's "unexpectedness x relevance" baseline
  (`seren.serengpt.evaluate.heuristic_scores`), vectorised: unexpectedness = 1 - mean category
  similarity (1 same subcategory, 0.5 same top) to the user's positives; relevance = the item's
  Laplace-smoothed positive rate.
* ``behaviour``: a cheap judge distilled from the same behaviour labels SerenGPT is trained on:
  the smoothed positive rate of past *unexpected* exposures in the arm's log, per (relation of
  the item's category to the user's history: sibling of an engaged top category or outside it;
  appeal level stated in the item text) -- the two features SerenGPT's prompt states (relation
  line, appeal phrase). Refit when the main recommender retrains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

JUDGES = ("behaviour", "heuristic", "serengpt")
JUDGE_LABELS = {
    "behaviour": "behaviour-rate judge (distilled from the arm's logged unexpected exposures; SerenGPT stand-in)",
    "heuristic": "unexpectedness x relevance heuristic (seren.serengpt.evaluate.heuristic_scores)",
    "serengpt": "SerenGPT (in-process scorer)",
}


def heuristic_matrix(
    pos_count: np.ndarray, top_of_sub: np.ndarray, sub_of: np.ndarray, cands: np.ndarray, relevance: np.ndarray
) -> np.ndarray:
    """unexpectedness x relevance for U x n candidate indices (-1 = none -> score -inf).

    pos_count: U x S positives per subcategory (the history, with multiplicity, as the heuristic's
    mean over engaged items)."""
    U = pos_count.shape[0]
    n_top = int(top_of_sub.max()) + 1
    top_count = np.zeros((U, n_top))
    for t in range(n_top):
        top_count[:, t] = pos_count[:, top_of_sub == t].sum(axis=1)
    total = pos_count.sum(axis=1, keepdims=True)
    c = np.maximum(cands, 0)
    sub = sub_of[c]
    rows = np.arange(U)[:, None]
    same_sub = pos_count[rows, sub]
    same_top = top_count[rows, top_of_sub[sub]] - same_sub
    sim = np.where(total > 0, (same_sub + 0.5 * same_top) / np.maximum(total, 1), 0.0)
    score = (1.0 - sim) * relevance[c]
    return np.where(cands >= 0, score, -np.inf)


@dataclass
class BehaviourJudge:
    """Positive rate of unexpected exposures per (relation, appeal) class, Beta(1, 1)-smoothed."""

    n_appeal: int = 3
    exp: np.ndarray = field(default_factory=lambda: np.zeros((2, 3)))
    clk: np.ndarray = field(default_factory=lambda: np.zeros((2, 3)))
    rate: np.ndarray = field(default_factory=lambda: np.full((2, 3), 0.5))

    def observe(self, relation: np.ndarray, appeal: np.ndarray, clicked: np.ndarray) -> None:
        """relation: 0 sibling / 1 outside, for unexpected exposures only."""
        np.add.at(self.exp, (relation, appeal), 1.0)
        np.add.at(self.clk, (relation, appeal), clicked.astype(float))

    def refit(self) -> None:
        self.rate = (self.clk + 1.0) / (self.exp + 2.0)

    def score(self, relation: np.ndarray, appeal: np.ndarray, quality: np.ndarray) -> np.ndarray:
        # the class rate decides; the item's own smoothed rate breaks ties inside a class
        return self.rate[relation, appeal] + 1e-3 * quality


class SerenGPTJudge:
    """SerenGPT P(Yes) in process: profiles from the arm's log, item texts as in training."""

    def __init__(self, model_dir: str, token_budget: int | None = None, batch_size: int = 16) -> None:
        from seren.llm.card import read_model_card
        from seren.llm.scorer import SerenScorer
        from seren.profiles import load_tokenizer

        self.model_dir = str(model_dir)
        self.scorer = SerenScorer.from_pretrained(self.model_dir)
        self.tokenizer = load_tokenizer(self.model_dir)
        card = read_model_card(self.model_dir).get("source", {}) if model_dir else {}
        self.token_budget = int(token_budget or card.get("token_budget") or 96)
        self.batch_size = batch_size
        self.calls = 0

    def score(self, dataset: Any, users: list[str], cand_ids: list[list[str]]) -> list[list[float]]:
        """Scores aligned with `cand_ids` for each user (profiles built from `dataset`)."""
        from seren.profiles import build_profiles, item_text

        todo = [(u, c) for u, c in zip(users, cand_ids, strict=True) if c]
        if not todo:
            return [[] for _ in users]
        prof = build_profiles(dataset, self.tokenizer, token_budget=self.token_budget, users=[u for u, _ in todo])
        prof = prof.set_index(prof["user_id"].astype(str))["profile_text"]
        items = dataset.items
        text = item_text(items).set_axis(items["item_id"].astype(str).to_numpy())
        ptexts, itexts = [], []
        for u, c in todo:
            ptexts += [str(prof.get(u, ""))] * len(c)
            itexts += text.reindex(c).fillna("").tolist()
        probs = self.scorer.score(ptexts, itexts, batch_size=self.batch_size)
        self.calls += len(ptexts)
        out: dict[str, list[float]] = {}
        k = 0
        for u, c in todo:
            out[u] = [float(p) for p in probs[k : k + len(c)]]
            k += len(c)
        return [out.get(u, []) for u in users]
