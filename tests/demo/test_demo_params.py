"""The demo passes its own parameters to the pipelines; a renamed pipeline parameter must fail here, in
seconds, not twenty minutes into `make demo`. (The demo itself runs end to end with `make demo QUICK=1`.)"""

from __future__ import annotations

import pytest

import pipelines as P
from seren import demo


@pytest.mark.parametrize("mode", sorted(demo.PROFILES))
def test_demo_parameters_are_declared_by_the_pipelines(mode: str) -> None:
    wanted = demo.PROFILES[mode]
    for name in ("features", "serengpt_training", "exploration"):
        declared = P.load(name).parameter_types()
        passed = demo._params_for(name, wanted)
        assert passed and set(passed) <= set(declared)
    # the stage sizes reach the pipelines that train (a typo would silently fall back to defaults)
    assert {"n_users", "n_items", "seed"} <= set(demo._params_for("features", wanted))
    assert "base_model" in demo._params_for("serengpt_training", wanted) or mode == "quick"
    assert "push_to_feast" in demo._params_for("exploration", wanted)
    nearline = P.load("nearline").parameter_types()
    assert set(demo.NEARLINE[mode]) | {"triton_url", "model"} <= set(nearline)
    assert {"window", "dataset", "target_params", "dry_run"} <= set(P.load("monitoring").parameter_types())


def test_quick_profile_shrinks_every_training_budget() -> None:
    quick, full = demo.PROFILES["quick"], demo.PROFILES["full"]
    assert quick["n_users"] < full["n_users"] and quick["n_items"] < full["n_items"]
    declared = set(P.load("serengpt_training").parameter_types()) | set(P.load("exploration").parameter_types())
    budgets = {k for k in quick if k.endswith("_steps") or k.endswith("_epochs")}
    assert budgets and budgets <= declared
