"""The simulator's world is the generator's: same latent draws, same response model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seren.data.synthetic import SyntheticConfig, World, WorldParams, generate_logs

CFG = SyntheticConfig(n_users=120, n_items=200, n_top=4, n_sub=3, events_per_user=20, seed=5)


def test_generator_draws_engagement_through_the_world(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[np.ndarray] = []
    real = World.respond

    def spy(self: World, users: np.ndarray, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = real(self, users, items, rng)
        calls.append(out.copy())
        return out

    monkeypatch.setattr(World, "respond", spy)
    ds, world = generate_logs(CFG)
    assert len(calls) == ds.users["n_events"].max()  # one draw per exposure step, all users at once
    # the log's positives are exactly the world's draws (step t of user u = row t of u's history)
    inter = ds.interactions
    pos = inter["event"].isin(["click", "like", "purchase"]).to_numpy()
    step = inter.groupby("user_id").cumcount().to_numpy()
    u = inter["user_id"].str[1:].astype(int).to_numpy()
    drawn = np.stack(calls, axis=1)  # U x T
    np.testing.assert_array_equal(pos, drawn[u, step])


def test_world_from_seed_is_the_generators_world() -> None:
    ds, world = generate_logs(CFG)
    again = World.from_seed(CFG)
    np.testing.assert_array_equal(again.vis, world.vis)
    np.testing.assert_array_equal(again.hid, world.hid)
    np.testing.assert_array_equal(again.curiosity, world.curiosity)
    pd.testing.assert_frame_equal(again.items, world.items)
    subs = np.array(world.subs)
    assert ds.users["hidden_interests"].tolist() == [",".join(subs[m]) for m in world.hid]


def test_simulator_and_generator_responses_agree() -> None:
    """Draw the log's exposures again through `respond` (as the simulator does) and compare the
    engagement rate per kind of item with the generator's: same model, same rates."""
    ds, world = generate_logs(SyntheticConfig(n_users=400, n_items=300, n_top=4, n_sub=3, events_per_user=40, seed=2))
    inter = ds.interactions
    u = inter["user_id"].str[1:].astype(int).to_numpy()
    i = inter["item_id"].str[1:].astype(int).to_numpy()
    gen = inter["event"].isin(["click", "like", "purchase"]).to_numpy()
    sim = world.respond(u, i, np.random.default_rng(99))
    sub = world.sub_of[i]
    kind = np.where(world.vis[u, sub], 0, np.where(world.hid[u, sub], 1, 2))
    for k in range(3):
        m = kind == k
        assert m.sum() > 300
        assert abs(gen[m].mean() - sim[m].mean()) < 0.03, (k, gen[m].mean(), sim[m].mean())
    assert sim[kind == 0].mean() > sim[kind == 1].mean() > sim[kind == 2].mean()


def test_world_params_move_hidden_interests_and_curiosity() -> None:
    near = World.from_seed(CFG)
    far = World.from_seed(CFG, WorldParams(hidden_sibling_share=0.0, curiosity_mean=0.8))
    liked_top = lambda w: np.repeat(w.vis.reshape(w.n_users, 4, 3).any(axis=2), 3, axis=1)  # noqa: E731
    assert (near.hid <= liked_top(near)).all()  # every hidden interest is a sibling
    assert not (far.hid & liked_top(far)).any()  # none is
    assert abs(far.curiosity.mean() - 0.8) < 0.05
    np.testing.assert_array_equal(near.vis, far.vis)  # visible interests are unchanged
    assert "world" not in generate_logs(CFG)[0].meta  # default world: the historical manifest
