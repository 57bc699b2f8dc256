"""Serving-time interest exploration, the one definition: last two clusters -> pair lookup ->
recommendations restricted to the novel clusters.

The fine-tuned LLM's mapping is precomputed for every K=2 cluster pair (`pair_table`), so at
serving time a user's exploration slate is a table lookup plus the sequence recommender masked
to the items of the proposed clusters. Nearline (`seren.nearline`) runs it for a batch of changed
users, `seren explore` (`seren.exploration.workflow.explore_user`) for one user; both call
`explore_users` so the two can never disagree.

Conventions (the paper's K=2, kept from the first implementation):
- a user's recent clusters are the last two entries of `cluster_sequences` (positive engagements,
  consecutive repeats dropped), oldest first;
- a user with one cluster c explores from the table's (c, c) row; the reported `pair_key` is ""
  below two clusters;
- a user with no clustered positive engagement gets no novel clusters and no items.

Core module: imports no serving, monitoring or Feast code.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from seren.exploration.pair_table import pair_key
from seren.exploration.transitions import cluster_sequences

Lookup = Callable[..., dict[str, Any]]  # seren.exploration.pair_table.PairLookup


@dataclass(frozen=True)
class ExplorationSlate:
    """One user's exploration result: where they are, where the table sends them, what to show."""

    last_clusters: list[str]  # the (up to) two most recent clusters, oldest first
    pair_key: str  # table key of the last two clusters; "" below two clusters
    novel_clusters: list[str] = field(default_factory=list)
    novel_scores: list[float] = field(default_factory=list)
    source: str = "none"  # PairLookup source: table | fallback_c2 | fallback_global | empty_table; none
    items: list[tuple[str, float]] = field(default_factory=list)  # restricted recommendations, best first

    @property
    def lookup_pair(self) -> tuple[str, str] | None:
        """The (c1, c2) the table was asked for: (c, c) for a single cluster, None without one."""
        return lookup_pair(self.last_clusters)


def lookup_pair(recent: Sequence[str]) -> tuple[str, str] | None:
    """The pair to look up for a user's recent clusters (oldest first): the last two, (c, c) for
    one cluster, None for none."""
    if not recent:
        return None
    recent = list(recent)[-2:]
    return (recent[0], recent[0]) if len(recent) == 1 else (recent[0], recent[1])


def last_clusters(
    interactions: pd.DataFrame, users: Sequence[str], item_to_cluster: Mapping[str, str]
) -> dict[str, list[str]]:
    """user -> their last (up to) two interest clusters, oldest first (users without a clustered
    positive engagement are absent)."""
    inter = interactions[interactions["user_id"].astype(str).isin({str(u) for u in users})].copy()
    inter["user_id"] = inter["user_id"].astype(str)
    inter["item_id"] = inter["item_id"].astype(str)
    inter["timestamp"] = pd.to_datetime(inter["timestamp"], utc=True)
    seq = cluster_sequences(inter, dict(item_to_cluster))
    return {str(u): g["cluster_id"].tolist()[-2:] for u, g in seq.groupby("user_id", sort=False)}


def cluster_members(item_to_cluster: Mapping[str, str]) -> dict[str, set[str]]:
    """cluster -> its item ids (the mask the restricted recommender uses)."""
    out: dict[str, set[str]] = {}
    for item, c in item_to_cluster.items():
        out.setdefault(str(c), set()).add(str(item))
    return out


def explore_users(
    histories: Mapping[str, Sequence[str]],
    interactions: pd.DataFrame,
    item_to_cluster: Mapping[str, str],
    lookup: Lookup,
    recommender: Any | None,
    *,
    k: int,
    n_novel: int,
    cluster_items: Mapping[str, Collection[str]] | None = None,
    exclude: Mapping[str, Collection[str]] | None = None,
) -> dict[str, ExplorationSlate]:
    """Per user of `histories` (item ids, oldest first; the recommender's input), in that order:
    last two clusters -> `lookup(c1, c2, n=n_novel)` -> `recommender.recommend_batch` restricted to
    the items of the novel clusters minus `exclude[user]` (e.g. the main slate, so exploration adds
    exposure). `recommender` None or `k` 0: no items (the lookup still runs). One batched
    recommender call for all users."""
    users = [str(u) for u in histories]
    members = cluster_items if cluster_items is not None else cluster_members(item_to_cluster)
    recent = last_clusters(interactions, users, item_to_cluster)
    slates: list[ExplorationSlate] = []
    allowed: list[set[str]] = []
    for u in users:
        pair = lookup_pair(recent.get(u, []))
        if pair is None:
            slates.append(ExplorationSlate(last_clusters=[], pair_key=""))
            allowed.append(set())
            continue
        cs = recent[u]
        hit = lookup(pair[0], pair[1], n=n_novel)
        novel = [str(c) for c in hit["novel_clusters"]]
        slates.append(
            ExplorationSlate(
                last_clusters=list(cs),
                pair_key=pair_key(*pair) if len(cs) == 2 else "",
                novel_clusters=novel,
                novel_scores=[float(s) for s in hit.get("novel_scores", [])],
                source=str(hit.get("source", "table")),
            )
        )
        allowed.append(set().union(*(set(members.get(c, ())) for c in novel)))
    if exclude is not None:
        allowed = [a - set(exclude.get(u, ())) for a, u in zip(allowed, users, strict=True)]
    if recommender is None or k < 1 or not users:
        return dict(zip(users, slates, strict=True))
    recs = recommender.recommend_batch([list(histories[u]) for u in users], k=k, allowed_item_ids=allowed)
    return {
        u: ExplorationSlate(
            last_clusters=s.last_clusters,
            pair_key=s.pair_key,
            novel_clusters=s.novel_clusters,
            novel_scores=s.novel_scores,
            source=s.source,
            items=[(str(i), float(sc)) for i, sc in r],
        )
        for u, s, r in zip(users, slates, recs, strict=True)
    }
