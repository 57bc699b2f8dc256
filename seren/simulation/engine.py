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

The arms, one arm's state and its nearline refresh live in `seren.simulation.arms`; this module
holds the protocol (config, rounds, metrics, lifts).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seren import recommend as rec
from seren.data.synthetic import START, SyntheticConfig, World, WorldParams, generate_logs
from seren.errors import ConfigError
from seren.simulation import stats
from seren.simulation.arms import ARM_NOTES, ARMS, ArmState, _appeal, _caches, _engaged_top, _initial_state, _retrain
from seren.simulation.judges import JUDGE_LABELS, JUDGES, SerenGPTJudge

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
