"""The latent world the generator and the closed-loop simulator share: the generator's config, the
catalogue tables, items with their appeal, users' visible and hidden interests and curiosity,
and the one response model (`World.engage_prob` / `World.respond`). `seren.data.synthetic`
draws behaviour logs from it under a feedback loop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from seren.data.catalogue import (
    ADJECTIVES,
    APPEAL_LEVELS,
    APPEAL_MULT,
    APPEAL_PHRASES,
    APPEAL_PROBS,
    CATALOGUE,
    MAX_SUB,
    MAX_TOP,
)
from seren.errors import ConfigError


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the generator; every field lands in the dataset manifest for reproducibility."""

    n_users: int = 500
    n_items: int = 800
    n_top: int = 8
    n_sub: int = 5
    days: int = 60
    events_per_user: int = 60
    seed: int = 0
    shift: float = 0.0  # >0 moves the population: more curious users, interests skewed to later tops
    explore_start: float = 0.5  # exploration share of a brand-new user ...
    explore_end: float = 0.08  # ... decaying towards this as positives accumulate
    explore_decay: float = 10.0  # positives after which ~63% of the decay has happened
    sibling_explore: float = 0.7  # share of exploration that stays inside a liked top category
    rating_frac: float = 0.15  # share of exposures that also carry an explicit rating
    warmup_frac: float = 0.2  # first part of each history builds context and is not labelled
    expected_label_ratio: float = 0.3  # "relevant but expected" negatives per unexpected label, per user
    negative_label_frac: float = 0.15  # share of unexpected-but-ignored exposures kept (negative downsampling)
    zipf_a: float = 1.0

    def __post_init__(self) -> None:
        checks = [
            (self.n_users >= 1, "n_users must be >= 1"),
            (1 <= self.n_top <= MAX_TOP, f"n_top must be in 1..{MAX_TOP}"),
            (1 <= self.n_sub <= MAX_SUB, f"n_sub must be in 1..{MAX_SUB}"),
            (self.n_items >= self.n_top * self.n_sub, f"n_items must be >= n_top*n_sub ({self.n_top * self.n_sub})"),
            (self.days >= 1, "days must be >= 1"),
            (self.events_per_user >= 2, "events_per_user must be >= 2"),
            (self.shift >= 0, "shift must be >= 0"),
            (0 <= self.explore_end <= self.explore_start <= 1, "need 0 <= explore_end <= explore_start <= 1"),
            (0 <= self.sibling_explore <= 1, "sibling_explore must be in [0, 1]"),
            (0 <= self.rating_frac <= 1, "rating_frac must be in [0, 1]"),
            (0 <= self.warmup_frac < 1, "warmup_frac must be in [0, 1)"),
            (self.expected_label_ratio >= 0, "expected_label_ratio must be >= 0"),
            (0 <= self.negative_label_frac <= 1, "negative_label_frac must be in [0, 1]"),
            (self.seed >= 0, "seed must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"invalid synthetic config: {msg}", "pass values in the allowed range")


def catalogue_tables(cfg: SyntheticConfig) -> tuple[list[str], list[str], np.ndarray]:
    """(top names, subcategory paths "Top/Sub", sub -> top index) for this config."""
    tops = list(CATALOGUE)[: cfg.n_top]
    subs = [f"{t}/{s}" for t in tops for s in list(CATALOGUE[t][2])[: cfg.n_sub]]
    return tops, subs, np.repeat(np.arange(cfg.n_top), cfg.n_sub)


def _make_items(cfg: SyntheticConfig, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    tops, subs, _ = catalogue_tables(cfg)
    n_subs = len(subs)
    # every subcategory gets at least one item; the rest are spread with uneven sizes
    extra = rng.choice(n_subs, size=cfg.n_items - n_subs, p=rng.dirichlet(np.full(n_subs, 4.0)))
    sub_of = np.sort(np.concatenate([np.arange(n_subs), extra]))
    appeal = rng.choice(3, size=cfg.n_items, p=APPEAL_PROBS)
    latent_pop = (1.0 / (rng.permutation(cfg.n_items) + 1.0) ** cfg.zipf_a) * (0.5 + APPEAL_MULT[appeal])
    adj = rng.integers(len(ADJECTIVES), size=cfg.n_items)
    words = np.argsort(rng.random((cfg.n_items, 5)), axis=1)[:, :4]  # 4 distinct theme words
    kind_i = rng.integers(4, size=cfg.n_items)
    phrase_i = rng.integers(3, size=cfg.n_items)
    price_u = rng.random(cfg.n_items)
    width = max(5, len(str(cfg.n_items)))
    rows = []
    for i in range(cfg.n_items):
        top, sub = subs[sub_of[i]].split("/", 1)
        kinds, (lo, hi), themes = CATALOGUE[top]
        theme = themes[sub]
        w = [theme[j] for j in words[i]]
        level = APPEAL_LEVELS[appeal[i]]
        title = f"{ADJECTIVES[adj[i]]} {w[0].title()}"
        text = (
            f"{APPEAL_PHRASES[level][phrase_i[i]]} {sub} {kinds[kind_i[i]]} from {top}: "
            f"{title} is about {w[0]} and {w[1]}. "
            f"For anyone into {sub.lower()}, {w[2]} and {w[3]}."
        )
        price = round(lo + (hi - lo) * price_u[i] * (0.6 + 0.4 * appeal[i] / 2), 2)
        rows.append((f"i{i:0{width}d}", title, text, subs[sub_of[i]], price, level))
    items = pd.DataFrame(rows, columns=["item_id", "title", "text", "category", "price", "appeal"])
    return items, sub_of, latent_pop


def _make_users(
    cfg: SyntheticConfig, rng: np.random.Generator, params: WorldParams | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Visible/hidden interest masks (U x S) and curiosity (U,).

    With the default `WorldParams` the draws are exactly the generator's historical ones (same seed,
    same frames); other values draw extra numbers afterwards, so only the changed part differs."""
    params = params or WorldParams()
    U, n_top, n_sub = cfg.n_users, cfg.n_top, cfg.n_sub
    S = n_top * n_sub
    ramp = np.linspace(-1.0, 1.0, n_top) if n_top > 1 else np.zeros(1)
    top_w = np.exp(cfg.shift * 1.5 * ramp)
    top_w /= top_w.sum()
    vis = np.zeros((U, S), dtype=bool)
    hid = np.zeros((U, S), dtype=bool)
    rows = np.arange(U)
    n_vis = np.minimum(rng.integers(2, 4, size=U), S)
    # first visible interest picks the anchor top category (shift skews which tops are popular)
    anchor_top = rng.choice(n_top, size=U, p=top_w)
    first = anchor_top * n_sub + rng.integers(n_sub, size=U)
    vis[rows, first] = True
    for k in range(1, 3):
        todo = n_vis > k
        # further visible interests: some from the same top, the rest from any top; redraw collisions
        for _ in range(50):
            if not todo.any():
                break
            same = rng.random(U) < 0.35
            top = np.where(same, anchor_top, rng.choice(n_top, size=U, p=top_w))
            cand = top * n_sub + rng.integers(n_sub, size=U)
            ok = todo & ~vis[rows, cand]
            vis[rows[ok], cand[ok]] = True
            todo &= ~ok
    # hidden interests: 1-2 unseen siblings of visible interests
    n_hid = rng.integers(1, 3, size=U)
    vis_top = vis.reshape(U, n_top, n_sub).any(axis=2)  # U x n_top
    sib = np.repeat(vis_top, n_sub, axis=1) & ~vis  # U x S candidate siblings
    score = np.where(sib, rng.random((U, S)), -1.0)
    order = np.argsort(-score, axis=1)
    for k in range(min(2, S)):
        pick = order[:, k]
        ok = (n_hid > k) & sib[rows, pick]
        hid[rows[ok], pick[ok]] = True
    if params.hidden_sibling_share < 1.0:
        # move a share of the hidden interests to top categories the user shows no interest in
        far = ~np.repeat(vis_top, n_sub, axis=1)
        move = hid & (rng.random((U, S)) >= params.hidden_sibling_share)
        far_score = np.where(far, rng.random((U, S)), -1.0)
        for u in np.flatnonzero(move.any(axis=1) & far.any(axis=1)):
            n_move = int(move[u].sum())
            order_u = np.argsort(-far_score[u])[: min(n_move, int(far[u].sum()))]
            moved = np.flatnonzero(move[u])[: len(order_u)]
            hid[u, moved] = False
            hid[u, order_u] = True
    if params.curiosity_mean is None:
        curiosity = rng.beta(2.0 + 4.0 * cfg.shift, 3.0, size=U)
    else:
        m = params.curiosity_mean
        curiosity = rng.beta(5.0 * m, 5.0 * (1.0 - m), size=U)
    return vis, hid, curiosity


@dataclass(frozen=True)
class WorldParams:
    """World knobs beyond the generator's config (the simulation sweeps them).

    hidden_sibling_share: share of hidden interests that are siblings (same top category) of a
    visible one; the rest sit in top categories the user shows no interest in. curiosity_mean:
    mean of the population's curiosity (Beta(5m, 5(1-m))); None = the generator's Beta(2+4*shift, 3).
    """

    hidden_sibling_share: float = 1.0
    curiosity_mean: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.hidden_sibling_share <= 1.0:
            raise ConfigError("hidden_sibling_share must be in [0, 1]", "pass e.g. 1.0, 0.5 or 0.0")
        if self.curiosity_mean is not None and not 0.0 < self.curiosity_mean < 1.0:
            raise ConfigError("curiosity_mean must be in (0, 1)", "pass e.g. 0.4")

    def is_default(self) -> bool:
        return self == WorldParams()


@dataclass
class World:
    """The latent world: catalogue, users' visible and hidden interests, curiosity, item appeal, and
    the one response model (`engage_prob` / `respond`) that both the log generator and the
    closed-loop simulator draw engagement from."""

    cfg: SyntheticConfig
    params: WorldParams
    items: pd.DataFrame  # item_id, title, text, category, price, appeal (no observed popularity)
    sub_of: np.ndarray  # item -> subcategory index
    latent_pop: np.ndarray  # item -> latent popularity (exposure weight inside a subcategory)
    appeal_mult: np.ndarray  # item -> engagement multiplier of its appeal level
    vis: np.ndarray  # U x S visible interests
    hid: np.ndarray  # U x S hidden interests
    curiosity: np.ndarray  # U
    tops: list[str]
    subs: list[str]
    top_of_sub: np.ndarray

    @classmethod
    def build(cls, cfg: SyntheticConfig, rng: np.random.Generator, params: WorldParams | None = None) -> World:
        """Draw the world from `rng` (the generator's first draws, in its order)."""
        params = params or WorldParams()
        items, sub_of, latent_pop = _make_items(cfg, rng)
        tops, subs, top_of_sub = catalogue_tables(cfg)
        vis, hid, curiosity = _make_users(cfg, rng, params)
        level = items["appeal"].map({k: i for i, k in enumerate(APPEAL_LEVELS)}).to_numpy()
        return cls(
            cfg, params, items, sub_of, latent_pop, APPEAL_MULT[level], vis, hid, curiosity, tops, subs, top_of_sub
        )

    @classmethod
    def from_seed(cls, cfg: SyntheticConfig, params: WorldParams | None = None) -> World:
        return cls.build(cfg, np.random.default_rng(cfg.seed), params)

    @property
    def n_users(self) -> int:
        return int(self.vis.shape[0])

    @property
    def likes_top(self) -> np.ndarray:
        """U x S: the subcategory's top category holds a visible interest of the user."""
        n_sub = self.cfg.n_sub
        return np.repeat(self.vis.reshape(self.n_users, self.cfg.n_top, n_sub).any(axis=2), n_sub, axis=1)

    def engage_prob(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(positive engagement) of `users` exposed to `items` (broadcast shapes): visible interests
        engage most, hidden ones in proportion to curiosity, siblings of liked tops a little, the
        rest rarely; everything scaled by the item's appeal."""
        users, items = np.asarray(users), np.asarray(items)
        sub = self.sub_of[items]
        am = self.appeal_mult[items]
        v, h = self.vis[users, sub], self.hid[users, sub]
        lt = self.vis.reshape(self.n_users, self.cfg.n_top, self.cfg.n_sub)[users, self.top_of_sub[sub]].any(axis=-1)
        cur = self.curiosity[users]
        return np.where(
            v,
            0.15 + 0.6 * am,
            np.where(h, am * (0.35 + 0.75 * cur), np.where(lt, 0.02 + 0.08 * am, 0.01 + 0.05 * am)),
        )

    def respond(self, users: np.ndarray, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw engagement (bool, shape of the broadcast) for users exposed to items: one uniform per
        exposure, positive when below `engage_prob`."""
        p = self.engage_prob(users, items)
        return rng.random(p.shape) < p
