"""The arms of the closed-loop simulation and one arm's state: per-user positives, consumption and
exposures, the behaviour judge, and the nearline refresh (`_caches`) that fills each user's cache
with main, serendipity and exploration candidates the way the arm prescribes; retraining refits
the main recommender's item quality and the novel-cluster co-occurrence table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seren import recommend as rec
from seren.data.synthetic import World
from seren.nearline.candidates import item_quality, serendipity_pool
from seren.simulation.judges import BehaviourJudge, SerenGPTJudge, heuristic_matrix

if TYPE_CHECKING:
    from seren.simulation.engine import SimConfig

# arm -> (serendipity slots, exploration slots, serendipity source, exploration source)
ARMS: dict[str, tuple[int, int, str | None, str | None]] = {
    "control": (0, 0, None, None),
    "random_unexpected": (2, 1, "random", "random"),
    "sibling_category": (2, 1, "sibling", "sibling"),
    "serendipity": (2, 0, "judged", None),
    "exploration": (0, 1, None, "novel"),
    "seren": (2, 1, "judged", "novel"),
}
ARM_NOTES = {
    "control": "main recommender only",
    "random_unexpected": "2+1 special slots: random items outside the user's engaged subcategories",
    "sibling_category": "2+1 special slots: best-rated items of unengaged subcategories of engaged top categories",
    "serendipity": "2 serendipity slots: judged serendipity candidates",
    "exploration": "1 exploration slot: recommender restricted to the novel cluster",
    "seren": "2 serendipity + 1 exploration slot (`seren recommend`'s layout)",
}


@dataclass
class ArmState:
    pos_count: np.ndarray  # U x S positives per subcategory
    consumed: np.ndarray  # U x I positively engaged
    exposed: np.ndarray  # U x I exposures
    item_exp: np.ndarray
    item_clk: np.ndarray
    last2: np.ndarray  # U x 2 last two distinct engaged subcategories (oldest first), -1 = none
    judge: BehaviourJudge = field(default_factory=BehaviourJudge)
    log: list[pd.DataFrame] = field(default_factory=list)

    def copy(self) -> ArmState:
        return dataclasses.replace(
            self,
            pos_count=self.pos_count.copy(),
            consumed=self.consumed.copy(),
            exposed=self.exposed.copy(),
            item_exp=self.item_exp.copy(),
            item_clk=self.item_clk.copy(),
            last2=self.last2.copy(),
            judge=BehaviourJudge(exp=self.judge.exp.copy(), clk=self.judge.clk.copy(), rate=self.judge.rate.copy()),
            log=list(self.log),
        )


def _initial_state(ds: Any, world: World) -> ArmState:
    """The arms' common starting point: the generator's log in the same world."""
    inter = ds.interactions
    U, n_items, S = world.n_users, len(world.items), len(world.subs)
    uidx = pd.Index(ds.users["user_id"].astype(str)).get_indexer(inter["user_id"].astype(str))
    iidx = pd.Index(world.items["item_id"].astype(str)).get_indexer(inter["item_id"].astype(str))
    pos = inter["event"].isin(["click", "like", "purchase"]).to_numpy() | (inter["rating"].fillna(0) >= 4).to_numpy()
    pos_count = np.zeros((U, S))
    np.add.at(pos_count, (uidx[pos], world.sub_of[iidx[pos]]), 1.0)
    consumed = np.zeros((U, n_items), dtype=bool)
    consumed[uidx[pos], iidx[pos]] = True
    exposed = np.zeros((U, n_items), dtype=np.int32)
    np.add.at(exposed, (uidx, iidx), 1)
    item_exp = np.bincount(iidx, minlength=n_items).astype(float)
    item_clk = np.bincount(iidx[pos], minlength=n_items).astype(float)
    last2 = np.full((U, 2), -1, dtype=np.int64)
    order = np.argsort(pd.to_datetime(inter["timestamp"]).to_numpy(), kind="stable")
    for u, s in zip(uidx[order][pos[order]], world.sub_of[iidx[order][pos[order]]], strict=True):
        if last2[u, 1] != s:
            last2[u] = (last2[u, 1], s)
    st = ArmState(pos_count, consumed, exposed, item_exp, item_clk, last2)
    # behaviour judge: unexpected exposures of the starting log (subcategory first engaged at or after it)
    ts = pd.to_datetime(inter["timestamp"]).to_numpy()
    sub = world.sub_of[iidx]
    key = uidx * S + sub
    first = pd.Series(ts[pos]).groupby(key[pos]).min()
    first_t = pd.Series(key).map(first).to_numpy()
    unexpected = pd.isna(first_t) | (ts <= np.where(pd.isna(first_t), ts, first_t))
    engaged_top = _engaged_top(pos_count > 0, world.top_of_sub)
    relation = np.where(engaged_top[uidx, world.top_of_sub[sub]], 0, 1)
    appeal = _appeal(world)[iidx]
    st.judge.observe(relation[unexpected], appeal[unexpected], pos[unexpected])
    st.judge.refit()
    return st


def _appeal(world: World) -> np.ndarray:
    return world.items["appeal"].map({"low": 0, "mid": 1, "high": 2}).to_numpy()


def _engaged_top(engaged_sub: np.ndarray, top_of_sub: np.ndarray) -> np.ndarray:
    n_top = int(top_of_sub.max()) + 1
    out = np.zeros((engaged_sub.shape[0], n_top), dtype=bool)
    for t in range(n_top):
        out[:, t] = engaged_sub[:, top_of_sub == t].any(axis=1)
    return out


def _top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n best per row, best first (-1 where the score is -inf)."""
    n = min(n, scores.shape[1])
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    return np.where(np.isfinite(np.take_along_axis(scores, idx, axis=1)), idx, -1)


@dataclass
class Model:
    """What the main recommender and the novel-cluster table learnt at the last retrain."""

    quality: np.ndarray
    cooc: np.ndarray


def _retrain(st: ArmState) -> Model:
    engaged = (st.pos_count > 0).astype(float)
    cooc = engaged.T @ engaged
    np.fill_diagonal(cooc, 0.0)
    st.judge.refit()
    return Model(item_quality(st.item_exp, st.item_clk), cooc)


def _caches(
    arm: str, st: ArmState, model: Model, world: World, cfg: SimConfig, rng: np.random.Generator, judge: Any
) -> list[rec.CachedCandidates]:
    """The nearline refresh: what each user's cache holds for this arm."""
    n_ser, n_exp, ser_src, exp_src = ARMS[arm]
    U = world.n_users
    sub_of, top_of_sub = world.sub_of, world.top_of_sub
    engaged = st.pos_count > 0
    aff = (st.pos_count + 0.05) / (st.pos_count.sum(axis=1, keepdims=True) + 0.05 * st.pos_count.shape[1])
    score = aff[:, sub_of] * model.quality[None, :] * 0.5 ** np.minimum(st.exposed, 30)
    score = np.where(st.consumed, -np.inf, score)
    main = _top_n(score, cfg.k + 4)

    ser: list[list[tuple[int, float]]] = [[] for _ in range(U)]
    exp: list[list[int]] = [[] for _ in range(U)]
    labels: list[str | None] = [None] * U
    if ser_src == "random" or exp_src == "random":
        outside = ~engaged[:, sub_of] & ~st.consumed
        r = np.where(outside, rng.random(outside.shape), -np.inf)
        picks = _top_n(r, n_ser + n_exp)
        for u in range(U):
            row = [int(i) for i in picks[u] if i >= 0]
            ser[u] = [(i, 1.0) for i in row[:n_ser]]
            exp[u] = row[n_ser:]
    if ser_src == "sibling" or exp_src == "sibling":
        pool = serendipity_pool(engaged, sub_of, top_of_sub, model.quality, st.consumed, n_ser + n_exp + 4, 1.0)
        for u in range(U):
            row = [int(i) for i in pool[u] if i >= 0]
            ser[u] = [(i, float(model.quality[i])) for i in row[: n_ser + 2]]
            exp[u] = row[n_ser + 2 :] + row[n_ser:]
    if ser_src == "judged":
        pool = serendipity_pool(engaged, sub_of, top_of_sub, model.quality, st.consumed, cfg.n_candidates)
        if cfg.judge == "heuristic":
            s = heuristic_matrix(st.pos_count, top_of_sub, sub_of, pool, model.quality)
        elif cfg.judge == "behaviour":
            c = np.maximum(pool, 0)
            relation = np.where(_engaged_top(engaged, top_of_sub)[np.arange(U)[:, None], top_of_sub[sub_of[c]]], 0, 1)
            s = np.where(pool >= 0, st.judge.score(relation, _appeal(world)[c], model.quality[c]), -np.inf)
        else:
            s = _serengpt_scores(judge, st, world, pool)
        for u in range(U):
            ok = pool[u] >= 0
            ser[u] = [(int(i), float(v)) for i, v in zip(pool[u][ok], s[u][ok], strict=True)]
    if exp_src == "novel":
        l1, l2 = st.last2[:, 0], st.last2[:, 1]
        S = len(world.subs)
        nov = np.zeros((U, S))
        has1, has2 = l1 >= 0, l2 >= 0
        nov[has1] += model.cooc[l1[has1]]
        nov[has2] += model.cooc[l2[has2]]
        nov = np.where(engaged | ~has2[:, None], -np.inf, nov + 1e-9 * np.arange(S)[::-1])
        novel = np.argmax(nov, axis=1)
        ok = np.isfinite(nov[np.arange(U), novel])
        restricted = np.where(sub_of[None, :] == novel[:, None], score, -np.inf)
        picks = _top_n(restricted, n_exp + 3)
        for u in np.flatnonzero(ok):
            exp[u] = [int(i) for i in picks[u] if i >= 0]
            labels[u] = world.subs[novel[u]]
    out = []
    for u in range(U):
        out.append(
            rec.CachedCandidates(
                main=[int(i) for i in main[u] if i >= 0],
                serendipity=ser[u],
                explore=exp[u],
                cluster_label=labels[u],
                explore_reason=None if exp[u] or not n_exp else "exploration: no novel cluster",
            )
        )
    return out


def _serengpt_scores(judge: SerenGPTJudge, st: ArmState, world: World, pool: np.ndarray) -> np.ndarray:
    from seren.data.dataset import Dataset

    ids = world.items["item_id"].astype(str).to_numpy()
    users = [f"u{u:0{max(5, len(str(world.n_users)))}d}" for u in range(world.n_users)]
    inter = pd.concat(st.log, ignore_index=True)
    ds = Dataset(interactions=inter, items=world.items, users=None, labels=None, meta={})
    cand = [[str(ids[i]) for i in row if i >= 0] for row in pool]
    scores = judge.score(ds, users, cand)
    out = np.full(pool.shape, -np.inf)
    for u, s in enumerate(scores):
        out[u, : len(s)] = s
    return out
