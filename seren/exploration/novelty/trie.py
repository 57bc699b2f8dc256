"""A token trie over the valid cluster descriptions: constrained decoding can only walk to a valid
cluster, and a pair's own clusters can be excluded from the walk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seren.errors import ConfigError, DataError
from seren.exploration.transitions import transition_completion

Pair = tuple[str, str]


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
