"""THE slate function: nearline output -> what a user sees, pure (no store, no clock). Used by
`seren.recommend.recommend` (online store), the simulator's arms, the replay and `seren explore`.

Slot layout (1-based, deterministic): positions 1 and 2 always hold the main recommender's top
items -- the head of a slate gets most of the attention, and a surprise there costs the most when
it misses. The special slots then sit on every other position from 3 (3, 5, 7, ...), serendipity
and exploration alternating, serendipity first: with the defaults (k=10, 2 serendipity, 1
exploration) that is serendipity at 3 and 7, exploration at 5. Every special slot is flanked by
main items, so no two surprises are adjacent and the slate still reads as relevant. A special
slot that does not fit (3 + 2j > k) is dropped with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seren.errors import ConfigError

MAX_K = 100
HEAD = 2  # positions kept for the main recommender's top items


def slot_layout(k: int, n_serendipity: int = 2, n_explore: int = 1) -> tuple[list[str], dict[str, int]]:
    """The source planned for each position (``main``/``serendipity``/``exploration``) and how
    many special slots of each kind did not fit in ``k``."""
    check_sizes(k, n_serendipity, n_explore)
    kinds: list[str] = []
    s, e = n_serendipity, n_explore
    while s or e:  # alternate, serendipity first, until one kind runs out
        if s:
            kinds.append("serendipity")
            s -= 1
        if e:
            kinds.append("exploration")
            e -= 1
    layout = ["main"] * k
    dropped = {"serendipity": 0, "exploration": 0}
    for j, kind in enumerate(kinds):
        pos = HEAD + 2 * j  # 0-based: 2, 4, 6, ... = positions 3, 5, 7, ...
        if pos < k:
            layout[pos] = kind
        else:
            dropped[kind] += 1
    return layout, dropped


@dataclass
class CachedCandidates:
    """What the nearline job cached for one user (or what a simulated arm cached): the main slate
    (best first), judged serendipity candidates (item, score), the exploration slate, and the
    reason a source cannot be used (stale, malformed, ...) when it cannot."""

    main: list[str]
    serendipity: list[tuple[str, float]] = field(default_factory=list)
    explore: list[str] = field(default_factory=list)
    cluster_label: str | None = None
    serendipity_reason: str | None = None
    explore_reason: str | None = None
    serendipity_empty: str = "serendipity: no cached SerenGPT candidates above threshold"


def build_slate(
    cached: CachedCandidates, k: int = 10, n_serendipity: int = 2, n_explore: int = 1
) -> tuple[list[dict[str, Any]], list[str]]:
    """THE slate function (nearline output -> what a user sees), pure: no store, no clock.

    Used by `recommend` (online store), the simulator's arms and `seren explore`. Layout from
    `slot_layout`; the main items that fill main positions are reserved first, so a special slot
    never repeats one (serendipity best score first, stable on ties; exploration in cached order);
    a special slot left without a pick takes the next main item. Returns (slots with item_id,
    source, score, cluster; fallback reasons)."""
    layout, dropped = slot_layout(k, n_serendipity, n_explore)
    fallbacks = [
        f"{kind}: {n} slot(s) do not fit in k={k} (special slots sit at 3, 5, 7, ...)"
        for kind, n in dropped.items()
        if n
    ]
    main = list(dict.fromkeys(cached.main))
    n_ser_slots = layout.count("serendipity")
    n_exp_slots = layout.count("exploration")
    n_main = len(layout) - n_ser_slots - n_exp_slots
    shown_main = set(main[:n_main])
    taken = set(shown_main)

    ser_picks: list[tuple[str, float]] = []
    if n_ser_slots:
        if cached.serendipity_reason:
            fallbacks.append(cached.serendipity_reason)
        elif not cached.serendipity:
            fallbacks.append(cached.serendipity_empty)
        else:
            ranked = sorted(cached.serendipity, key=lambda p: -p[1])  # stable on ties
            for item, score in ranked:
                if len(ser_picks) == n_ser_slots:
                    break
                if item not in taken:
                    ser_picks.append((item, score))
                    taken.add(item)
            if not ser_picks:
                fallbacks.append("serendipity: every cached candidate is already in the main slate")
        if ser_picks and len(ser_picks) < n_ser_slots:
            fallbacks.append(f"serendipity: only {len(ser_picks)} new candidate(s) for {n_ser_slots} slot(s)")

    exp_picks: list[str] = []
    if n_exp_slots:
        if cached.explore_reason:
            fallbacks.append(cached.explore_reason)
        else:
            for item in cached.explore:
                if len(exp_picks) == n_exp_slots:
                    break
                if item not in taken:
                    exp_picks.append(item)
                    taken.add(item)
            if not exp_picks:
                fallbacks.append("exploration: every cached exploration item is already in the slate")
            elif len(exp_picks) < n_exp_slots:
                fallbacks.append(f"exploration: only {len(exp_picks)} new item(s) for {n_exp_slots} slot(s)")

    # fill positions in order; a special slot left without a pick takes the next main item, so
    # the main slate keeps its own order
    queue = iter([m for m in main if m not in taken or m in shown_main])
    ser_iter, exp_iter = iter(ser_picks), iter(exp_picks)
    slots: list[dict[str, Any]] = []
    for kind in layout:
        slot: dict[str, Any] | None = None
        if kind == "serendipity" and (pick := next(ser_iter, None)) is not None:
            slot = {"item_id": pick[0], "source": "serendipity", "score": round(pick[1], 4), "cluster": None}
        elif kind == "exploration" and (item := next(exp_iter, None)) is not None:
            slot = {"item_id": item, "source": "exploration", "score": None, "cluster": cached.cluster_label}
        elif (item := next(queue, None)) is not None:
            slot = {"item_id": item, "source": "main", "score": None, "cluster": None}
        if slot is not None:
            slots.append(slot)
    if len(slots) < k:
        fallbacks.append(f"main: only {len(slots)} distinct cached item(s) for k={k}")
    return slots, fallbacks


def check_sizes(k: int, n_serendipity: int, n_explore: int) -> None:
    if not 1 <= k <= MAX_K:
        raise ConfigError(f"k={k} is out of range", f"use 1 <= k <= {MAX_K}")
    if n_serendipity < 0 or n_explore < 0:
        raise ConfigError(
            f"negative slot count (serendipity={n_serendipity}, exploration={n_explore})", "use 0 or more"
        )
