"""Seeded synthetic catalogue + users + feedback-loop behaviour + ground-truth serendipity labels.

The generator is built so that later stages can learn real signal from *text*:

* every item text names its top category, subcategory and theme words, and states its appeal
  in words ("a widely acclaimed ...", "a middling ...", "a forgettable ...");
* each user has visible interests (subcategories that dominate the history) and hidden interests:
  *sibling* subcategories (same top category) of a visible one. An item from an unseen
  subcategory of a top category the user likes is therefore a likely pleasant surprise, one from
  an unrelated top category is not -- serendipity is predictable from a profile;
* exposure follows a feedback loop: the recommender shows mostly subcategories of past positives
  and explores less as the history grows, so exposure concentrates over time;
* labels are ground truth: an exposure outside the user's history at that moment is unexpected,
  and serendipitous iff the user engaged with it.

Everything is vectorised over users (one numpy step per exposure position), so 1M interactions
take seconds.

The catalogue itself (categories, theme words, appeal phrases) is data in `seren.data.catalogue`;
the latent world and its response model are in `seren.data.world`; this module draws the logs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from seren.data.catalogue import APPEAL_LEVELS
from seren.data.dataset import Dataset
from seren.data.world import SyntheticConfig, World, WorldParams

GENERATOR_VERSION = 1
START = pd.Timestamp("2024-01-01", tz="UTC")

POSITIVE_EVENT_NAMES = np.array(["click", "like", "purchase"])


def generate(
    cfg: SyntheticConfig | None = None,
    on_step: Callable[[int, int], None] | None = None,
    world: WorldParams | None = None,
) -> Dataset:
    """Build a validated Dataset (interactions, items, users, labels) for `cfg`; same seed, same frames.

    `on_step(done, total)` is called after each simulated exposure step (for progress bars);
    `world` changes the latent world (see `WorldParams`; default = the historical generator).
    """
    return simulate(cfg or SyntheticConfig(), on_step, world).validate()


def simulate(
    cfg: SyntheticConfig, on_step: Callable[[int, int], None] | None = None, world: WorldParams | None = None
) -> Dataset:
    """The generator without the final schema pass (benchmarks time the two separately)."""
    return generate_logs(cfg, on_step, world)[0]


def generate_logs(
    cfg: SyntheticConfig, on_step: Callable[[int, int], None] | None = None, world: WorldParams | None = None
) -> tuple[Dataset, World]:
    """The behaviour log (unvalidated Dataset) and the latent `World` that produced it."""
    rng = np.random.default_rng(cfg.seed)
    wd = World.build(cfg, rng, world)
    items, sub_of, latent_pop = wd.items.copy(), wd.sub_of, wd.latent_pop
    subs, top_of_sub = wd.subs, wd.top_of_sub
    U, S, n_sub = cfg.n_users, len(subs), cfg.n_sub
    vis, hid, curiosity = wd.vis, wd.hid, wd.curiosity
    rows = np.arange(U)

    # item sampler within a subcategory: items are sorted by sub, so cumulative weights per sub
    # live in [sub, sub+1) of one global array and a single searchsorted draws for all users.
    cum = np.zeros(cfg.n_items)
    for s in range(S):  # S <= 96, cheap
        m = sub_of == s
        c = np.cumsum(latent_pop[m])
        cum[m] = s + c / c[-1]
    cum[-1] = S  # guard against float round-off at the end

    # history lengths vary around events_per_user
    epu = cfg.events_per_user
    T_u = np.clip(np.round(epu * rng.lognormal(0.0, 0.35, size=U)), max(2, epu // 3), 2.5 * epu).astype(np.int64)
    T = int(T_u.max())
    warm = np.floor(cfg.warmup_frac * T_u).astype(np.int64)

    counts = np.full((U, S), 0.05)
    counts[vis] += 1.0  # onboarding: the system knows declared interests a little
    # known interests: declared at onboarding (visible) plus every subcategory with a past positive
    hist = vis.copy()
    npos = np.zeros(U)
    item_m = np.zeros((U, T), dtype=np.int64)
    pos_m = np.zeros((U, T), dtype=bool)
    inhist_m = np.zeros((U, T), dtype=bool)
    explore_m = np.zeros((U, T), dtype=bool)
    w = counts**1.5  # exploitation weights, sharpened towards the strongest interests
    for t in range(T):
        p_explore = cfg.explore_end + (cfg.explore_start - cfg.explore_end) * np.exp(-npos / cfg.explore_decay)
        cw = np.cumsum(w, axis=1)
        r = rng.random(U) * cw[:, -1]
        sub_x = np.minimum((cw < r[:, None]).sum(axis=1), S - 1)
        explore = rng.random(U) < p_explore
        sibling = rng.random(U) < cfg.sibling_explore
        sub_sib = top_of_sub[sub_x] * n_sub + rng.integers(n_sub, size=U)
        sub_rand = rng.integers(S, size=U)
        sub = np.where(explore, np.where(sibling, sub_sib, sub_rand), sub_x)
        item = np.minimum(np.searchsorted(cum, sub + rng.random(U), side="right"), cfg.n_items - 1)
        sub = sub_of[item]
        active = t < T_u
        pos = wd.respond(rows, item, rng) & active  # the world's response model (shared with the simulator)
        item_m[:, t] = item
        pos_m[:, t] = pos
        inhist_m[:, t] = hist[rows, sub]
        explore_m[:, t] = explore
        counts[rows, sub] += pos
        w[rows, sub] = counts[rows, sub] ** 1.5
        hist[rows, sub] |= pos
        npos += pos
        if on_step is not None:
            on_step(t + 1, T)

    steps = np.arange(T)[None, :]
    active = steps < T_u[:, None]
    # timestamps: sessions of a few minutes scattered over `days`, strictly increasing per user
    horizon = cfg.days * 86400
    n_sess = (T + 7) // 8
    n_sess_u = (T_u + 7) // 8
    starts = horizon * (np.arange(n_sess)[None, :] + rng.random((U, n_sess))) / n_sess_u[:, None]
    gaps = rng.integers(20, 240, size=(U, n_sess, 8)).cumsum(axis=2).reshape(U, n_sess * 8)[:, :T]
    raw = np.repeat(starts.astype(np.int64), 8, axis=1)[:, :T] + gaps
    secs = np.maximum.accumulate(raw, axis=1) + steps  # strictly increasing

    n = int(active.sum())
    u_idx = np.broadcast_to(rows[:, None], (U, T))[active]
    it = item_m[active]
    pos = pos_m[active]
    inh = inhist_m[active]
    step = np.broadcast_to(steps, (U, T))[active]
    ts = START + pd.to_timedelta(secs[active], unit="s")
    lvl = items["appeal"].map({k: i for i, k in enumerate(APPEAL_LEVELS)}).to_numpy()[it]
    ev_choice = rng.random(n)
    p_purchase = 0.08 + 0.06 * lvl
    ev_pos = np.where(ev_choice < p_purchase, 2, np.where(ev_choice < p_purchase + 0.3, 1, 0))
    event = np.where(pos, POSITIVE_EVENT_NAMES[ev_pos], "skip").astype(object)
    rated = rng.random(n) < cfg.rating_frac
    rating = np.full(n, np.nan)
    r_pos = 4.0 + (rng.random(n) < 0.3 + 0.25 * lvl)
    r_neg = 1.0 + rng.integers(0, 3, size=n)
    rating[rated & pos] = r_pos[rated & pos]
    neg_rated = rated & ~pos
    rating[neg_rated] = r_neg[neg_rated]
    event[neg_rated] = "rating"  # consumed and disliked: an explicit low rating instead of a skip

    uw = max(5, len(str(U)))
    user_ids = np.array([f"u{i:0{uw}d}" for i in range(U)], dtype=object)
    item_ids = items["item_id"].to_numpy()
    interactions = pd.DataFrame(
        {"user_id": user_ids[u_idx], "item_id": item_ids[it], "event": event, "rating": rating, "timestamp": ts}
    )

    # ground-truth labels (after the warm-up part of each history)
    labelled = step >= warm[u_idx]
    unexpected_kept = labelled & ~inh & (pos | (rng.random(n) < cfg.negative_label_frac))
    # expected positives: a per-user quota proportional to that user's unexpected labels, drawn at
    # random, so long histories do not drown the serendipity signal in easy negatives
    quota = np.ceil(cfg.expected_label_ratio * np.bincount(u_idx[unexpected_kept], minlength=U))
    cand = np.flatnonzero(labelled & inh & pos)
    cand = cand[rng.permutation(len(cand))]
    rank = pd.Series(u_idx[cand]).groupby(u_idx[cand]).cumcount().to_numpy()
    expected_kept = np.zeros(n, dtype=bool)
    expected_kept[cand[rank < quota[u_idx[cand]]]] = True
    sel = unexpected_kept | expected_kept
    labels = pd.DataFrame(
        {
            "user_id": user_ids[u_idx[sel]],
            "item_id": item_ids[it[sel]],
            "serendipitous": (pos[sel] & ~inh[sel]).astype(np.int64),
            "relevant": pos[sel].astype(np.int64),
            "unexpected": (~inh[sel]).astype(np.int64),
            "timestamp": ts[sel],
            "source": "ground_truth",
        }
    )
    labels = labels.drop_duplicates(["user_id", "item_id"], keep="first").reset_index(drop=True)

    items["popularity"] = np.bincount(it, minlength=cfg.n_items).astype(float)
    sub_names = np.array(subs, dtype=object)

    def _join(mask: np.ndarray) -> list[str]:
        return [",".join(sub_names[m]) for m in mask]

    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "visible_interests": _join(vis),
            "hidden_interests": _join(hid),
            "curiosity": curiosity.round(4),
            "n_events": T_u,
        }
    )
    meta: dict[str, Any] = {
        "source": "synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": cfg.seed,
        "config": dataclasses.asdict(cfg),
        "categories": subs,
        "explore_share": float(explore_m[active].mean()),
    }
    if not wd.params.is_default():  # the historical manifest is unchanged for the default world
        meta["world"] = dataclasses.asdict(wd.params)
    # a catalogue too small for anything unexpected (e.g. one category) yields no labels
    ds = Dataset(interactions=interactions, items=items, users=users, labels=labels if len(labels) else None, meta=meta)
    return ds, wd
