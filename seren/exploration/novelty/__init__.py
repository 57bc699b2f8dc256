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

Split by concern: `trie` (constrained decoding), `model` (serving: scoring and beam search),
`train` (LoRA SFT), `evaluate` (gates and baselines). The public names are re-exported here, so
`from seren.exploration.novelty import X` keeps working.
"""

from seren.exploration.novelty.evaluate import (
    EXACT_MATCH_GATE,
    RECALL_GATE,
    Baselines,
    evaluate_novelty,
    paired_margin,
    recall_at,
)
from seren.exploration.novelty.model import CLUSTERS_FILE, NoveltyModel
from seren.exploration.novelty.train import linear_decay_callback, linear_decay_lambda, train_novelty
from seren.exploration.novelty.trie import DescriptionTrie, Pair

__all__ = [
    "CLUSTERS_FILE",
    "EXACT_MATCH_GATE",
    "RECALL_GATE",
    "Baselines",
    "DescriptionTrie",
    "NoveltyModel",
    "Pair",
    "evaluate_novelty",
    "linear_decay_callback",
    "linear_decay_lambda",
    "paired_margin",
    "recall_at",
    "train_novelty",
]
