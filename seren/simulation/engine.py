"""Closed-loop simulation on the synthetic world: arm against arm, round after round.

Every arm is an independent copy of the same world (same seed, same starting log from the
generator, the same random stream for users' responses: common random numbers, so differences
between arms come from the slates, not from luck). Each round, for every arm:

1. nearline refresh of the users whose behaviour changed (every served user): main candidates
   from the main recommender on the user's fresh history, exploration candidates (the
   recommender restricted to the novel cluster of the user's last two clusters), serendipity
   candidates (`seren.nearline.candidates`: outside the user's engaged categories) scored by
   the judge;
2. the slate of k items from THE slate function, `seren.recommend.build_slate`, over those cached
   candidates (the arms differ only in what they cache and how many special slots they have);
3. the users respond (`World.respond`, the generator's response model), responses are appended to
   the arm's history;
4. every `retrain_every` rounds the main recommender (and the novel-cluster table and the
   behaviour judge) is refit on the arm's log.

Main recommender (labelled in every report): category affinity x item quality -- the user's
share of positives in the item's subcategory times the item's smoothed positive rate, consumed
items removed, items shown and skipped down-weighted by half per exposure. The SASRec of
`seren.exploration.seqrec` is too slow to retrain 20 times for 1000 users x 6 arms on 2 CPU
cores. Clusters are the catalogue's subcategories and the novel-cluster table is co-occurrence
of engaged subcategories across users (the project's co-occurrence baseline for the LLM table).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from seren import recommend as rec
from seren.data.synthetic import START, SyntheticConfig, World, WorldParams, generate_logs
from seren.errors import ConfigError
from seren.nearline.candidates import item_quality, serendipity_pool
from seren.simulation import stats
from seren.simulation.judges import JUDGE_LABELS, JUDGES, BehaviourJudge, SerenGPTJudge, heuristic_matrix

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
METRICS = (
    "serendipitous_exposure_share",
    "serendipitous_clicks",
    "total_clicks",
    "hidden_interests_discovered",
    "category_coverage",
    "consumption_entropy",
)
MAIN_RECOMMENDER = "category affinity x smoothed item positive rate (retrained every R rounds)"


@dataclass
class SimConfig:
    """World, population and protocol of one simulation."""

    n_users: int = 1000
    n_items: int = 800
    n_top: int = 8
    n_sub: int = 5
    history_events: int = 30  # generator events per user before the first round
    rounds: int = 20
    k: int = 10
    retrain_every: int = 5
    n_candidates: int = 30
    judge: str = "behaviour"
    model_dir: str = ""  # serengpt judge
    hidden_sibling_share: float = 1.0
    curiosity_mean: float | None = None
    arms: tuple[str, ...] = tuple(ARMS)
    seed: int = 0
    n_boot: int = 1000

    def validate(self) -> SimConfig:
        unknown = [a for a in self.arms if a not in ARMS]
        checks = [
            (not unknown, f"unknown arm(s) {', '.join(unknown)} (known: {', '.join(ARMS)})"),
            ("control" in self.arms, "the arms must include control (lifts are relative to it)"),
            (self.rounds >= 1, "rounds must be >= 1"),
            (self.retrain_every >= 1, "retrain_every must be >= 1"),
            (4 <= self.k <= rec.MAX_K, f"k must be in 4..{rec.MAX_K}"),
            (self.n_candidates >= 3, "n_candidates must be >= 3"),
            (self.judge in JUDGES, f"judge must be one of {', '.join(JUDGES)}"),
            (self.judge != "serengpt" or bool(self.model_dir), "the serengpt judge needs a model dir"),
            (self.history_events >= 2, "history_events must be >= 2"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"invalid simulation setting: {msg}", "pass a value in the allowed range")
        self.world_params()
        self.synthetic()
        return self

    def world_params(self) -> WorldParams:
        return WorldParams(self.hidden_sibling_share, self.curiosity_mean)

    def synthetic(self) -> SyntheticConfig:
        return SyntheticConfig(
            n_users=self.n_users,
            n_items=self.n_items,
            n_top=self.n_top,
            n_sub=self.n_sub,
            events_per_user=self.history_events,
            seed=self.seed,
        )


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


@dataclass
class ArmResult:
    per_round: dict[str, list[float]]
    per_user: dict[str, tuple[np.ndarray, np.ndarray]]
    slate_calls: int
    seconds: float


def run_arm(
    arm: str,
    start: ArmState,
    world: World,
    cfg: SimConfig,
    judge: Any = None,
    on_round: Callable[[str, int], None] | None = None,
) -> ArmResult:
    """Run every round of one arm from the common start; per-round population curves and per-user
    totals (numerator, denominator) of each metric."""
    t0 = time.perf_counter()
    st = start.copy()
    U, n_items, S = world.n_users, len(world.items), len(world.subs)
    n_ser, n_exp, _, _ = ARMS[arm]
    respond_rng = np.random.default_rng([cfg.seed, 1])  # same stream in every arm
    arm_rng = np.random.default_rng([cfg.seed, 2])
    start_engaged = st.pos_count > 0
    hidden_open = world.hid & ~start_engaged
    found = np.zeros((U, S), dtype=bool)
    sim_sub = np.zeros((U, S))  # consumption during the simulation
    tot = {k: np.zeros(U) for k in ("exposures", "unexpected", "ser_clicks", "clicks")}
    item_exposure = np.zeros(n_items)
    curves: dict[str, list[float]] = {m: [] for m in (*METRICS, "item_exposure_gini")}
    rows = np.arange(U)[:, None]
    calls = 0
    model = _retrain(st)
    t_last = float(pd.Timestamp(START).timestamp()) + 90 * 86400
    for r in range(cfg.rounds):
        if r and r % cfg.retrain_every == 0:
            model = _retrain(st)
        caches = _caches(arm, st, model, world, cfg, arm_rng, judge)
        slates = np.full((U, cfg.k), -1, dtype=np.int64)
        for u, cached in enumerate(caches):
            slots, _ = rec.build_slate(cached, cfg.k, n_ser, n_exp)
            calls += 1
            slates[u, : len(slots)] = [s["item_id"] for s in slots]
        valid = slates >= 0
        items = np.maximum(slates, 0)
        u_rand = respond_rng.random((U, cfg.k))  # drawn for every slot: common random numbers
        clicks = (u_rand < world.engage_prob(rows, items)) & valid
        sub = world.sub_of[items]
        engaged_now = st.pos_count > 0
        unexpected = ~engaged_now[rows, sub] & valid
        # behaviour labels for the judge: unexpected exposures, sibling (0) or outside (1)
        rel = np.where(_engaged_top(engaged_now, world.top_of_sub)[rows, world.top_of_sub[sub]], 0, 1)
        st.judge.observe(rel[unexpected], _appeal(world)[items][unexpected], clicks[unexpected])
        # state update
        cu, ck = np.nonzero(clicks)
        np.add.at(st.pos_count, (cu, sub[cu, ck]), 1.0)
        st.consumed[cu, items[cu, ck]] = True
        vu, vk = np.nonzero(valid)
        np.add.at(st.exposed, (vu, items[vu, vk]), 1)
        np.add.at(st.item_exp, items[vu, vk], 1.0)
        np.add.at(st.item_clk, items[cu, ck], 1.0)
        np.add.at(item_exposure, items[vu, vk], 1.0)
        for u, s in zip(cu, sub[cu, ck], strict=True):
            if st.last2[u, 1] != s:
                st.last2[u] = (st.last2[u, 1], s)
        if judge is not None:
            st.log.append(_log_rows(world, slates, clicks, t_last + r * 3600.0))
        # metrics
        tot["exposures"] += valid.sum(axis=1)
        tot["unexpected"] += unexpected.sum(axis=1)
        tot["ser_clicks"] += (clicks & unexpected).sum(axis=1)
        tot["clicks"] += clicks.sum(axis=1)
        np.add.at(sim_sub, (cu, sub[cu, ck]), 1.0)
        found[cu, sub[cu, ck]] |= hidden_open[cu, sub[cu, ck]]
        curves["serendipitous_exposure_share"].append(stats.ratio(tot["unexpected"], tot["exposures"]))
        curves["serendipitous_clicks"].append(float(tot["ser_clicks"].sum()))
        curves["total_clicks"].append(float(tot["clicks"].sum()))
        curves["hidden_interests_discovered"].append(stats.ratio(found.sum(1), hidden_open.sum(1)))
        curves["category_coverage"].append(float((sim_sub > 0).sum(axis=1).mean()))
        curves["consumption_entropy"].append(float(stats.entropy_rows(sim_sub).mean()))
        curves["item_exposure_gini"].append(stats.gini(item_exposure))
        if on_round is not None:
            on_round(arm, r + 1)
    ones = np.ones(U)
    per_user = {
        "serendipitous_exposure_share": (tot["unexpected"], tot["exposures"]),
        "serendipitous_clicks": (tot["ser_clicks"], ones),
        "total_clicks": (tot["clicks"], ones),
        "hidden_interests_discovered": (found.sum(axis=1).astype(float), hidden_open.sum(axis=1).astype(float)),
        "category_coverage": ((sim_sub > 0).sum(axis=1).astype(float), ones),
        "consumption_entropy": (stats.entropy_rows(sim_sub), ones),
    }
    return ArmResult(curves, per_user, calls, round(time.perf_counter() - t0, 3))


def _log_rows(world: World, slates: np.ndarray, clicks: np.ndarray, t: float) -> pd.DataFrame:
    U, k = slates.shape
    valid = slates >= 0
    u, j = np.nonzero(valid)
    uw = max(5, len(str(U)))
    ids = world.items["item_id"].astype(str).to_numpy()
    return pd.DataFrame(
        {
            "user_id": [f"u{x:0{uw}d}" for x in u],
            "item_id": ids[slates[u, j]],
            "event": np.where(clicks[u, j], "click", "skip").astype(object),
            "rating": np.nan,
            "timestamp": pd.to_datetime(t + j, unit="s", utc=True),
        }
    )


def simulate(
    cfg: SimConfig,
    on_round: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Run every arm of `cfg`; returns the JSON-able result (config, per-round curves, lift table)."""
    cfg.validate()
    t0 = time.perf_counter()
    ds, world = generate_logs(cfg.synthetic(), world=cfg.world_params())
    start = _initial_state(ds, world)
    judge = None
    if cfg.judge == "serengpt" and any(ARMS[a][2] == "judged" for a in cfg.arms):
        judge = SerenGPTJudge(cfg.model_dir)
        inter = ds.interactions.copy()
        start.log = [inter]
    results = {arm: run_arm(arm, start, world, cfg, judge, on_round) for arm in cfg.arms}
    per_user = {a: r.per_user for a, r in results.items()}
    table = stats.lift_table(per_user, "control", cfg.n_boot, cfg.seed)
    versus = {}
    for other in ("random_unexpected", "sibling_category"):
        if "seren" in results and other in results:
            versus[other] = {
                m: stats.paired_lift(per_user["seren"][m], per_user[other][m], cfg.n_boot, cfg.seed)
                for m in ("serendipitous_clicks", "hidden_interests_discovered", "total_clicks")
            }
    gini_final = {a: r.per_round["item_exposure_gini"][-1] for a, r in results.items()}
    out = {
        "config": dataclasses.asdict(cfg),
        "judge": cfg.judge,
        "judge_label": JUDGE_LABELS[cfg.judge],
        "main_recommender": MAIN_RECOMMENDER,
        "arms": {a: ARM_NOTES[a] for a in cfg.arms},
        "world": {
            "hidden_sibling_share": cfg.hidden_sibling_share,
            "curiosity_mean": float(world.curiosity.mean()),
            "hidden_interests_per_user": float(world.hid.sum(axis=1).mean()),
        },
        "per_round": {a: r.per_round for a, r in results.items()},
        "table": table,
        "seren_vs": versus,
        "item_exposure_gini": gini_final,
        "slate_function_calls": {a: r.slate_calls for a, r in results.items()},
        "serengpt_pairs_scored": getattr(judge, "calls", 0),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    out["config"]["arms"] = list(cfg.arms)
    return out


def acceptance(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's acceptance checks on one result (reported, never enforced)."""
    t = result["table"]
    if "seren" not in t:
        return {}
    s = t["seren"]
    checks = {
        "serendipitous_clicks >= +25%, CI > 0": s["serendipitous_clicks"]["lift"] >= 0.25
        and s["serendipitous_clicks"]["ci_low"] > 0,
        "hidden_interests_discovered >= +30%, CI > 0": s["hidden_interests_discovered"]["lift"] >= 0.30
        and s["hidden_interests_discovered"]["ci_low"] > 0,
        "total_clicks >= 97% of control": s["total_clicks"]["lift"] >= -0.03,
    }
    vs = result.get("seren_vs", {}).get("random_unexpected")
    if vs:
        checks["more serendipitous clicks than random_unexpected, CI > 0"] = vs["serendipitous_clicks"]["ci_low"] > 0
    return checks


def sweep(
    base: SimConfig,
    sibling_shares: Sequence[float] = (1.0, 0.5, 0.0),
    curiosity_means: Sequence[float | None] = (None,),
    on_round: Callable[[str, int], None] | None = None,
) -> list[dict[str, Any]]:
    """The same simulation across worlds; one compact row per (sibling share, curiosity)."""
    rows = []
    for share in sibling_shares:
        for cur in curiosity_means:
            cfg = dataclasses.replace(base, hidden_sibling_share=share, curiosity_mean=cur)
            res = simulate(cfg, on_round)
            rows.append(
                {
                    "hidden_sibling_share": share,
                    "curiosity_mean": res["world"]["curiosity_mean"],
                    "curiosity_param": cur,
                    "table": res["table"],
                    "seren_vs": res["seren_vs"],
                    "acceptance": acceptance(res),
                    "seconds": res["seconds"],
                }
            )
    return rows
