"""seren-simulation: what seren's slots do to a population over time, before a launch.

simulate: arms (control, random_unexpected, sibling_category, serendipity, exploration, seren) on
independent copies of the synthetic world, rounds of serve -> respond -> nearline refresh (main
recommender retrained every `retrain_every` rounds), relative lifts over control with 95%
bootstrap intervals over users; optionally the same across worlds (sibling share of hidden
interests) and a replay on MovieLens. The report is an HTML artifact.
"""

from kfp import dsl
from kfp.dsl import Metrics

from components.simulate.component import simulate

# Local runs (`seren pipeline run simulation --local`): the small fast configuration.
DEFAULT_PARAMS: dict = {"n_users": 200, "n_items": 400, "rounds": 8, "retrain_every": 4}


@dsl.pipeline(
    name="seren-simulation",
    description="Closed-loop simulation of seren's serendipity and exploration slots against control and heuristic arms on the synthetic world, with lifts and 95% bootstrap intervals, an optional world sweep and MovieLens replay.",
)
def pipeline(
    n_users: int = 1000,
    n_items: int = 800,
    rounds: int = 20,
    k: int = 10,
    retrain_every: int = 5,
    n_candidates: int = 30,
    judge: str = "behaviour",
    model_dir: str = "",
    hidden_sibling_share: float = 1.0,
    sweep_shares: str = "",
    replay_dir: str = "",
    seed: int = 0,
) -> Metrics:
    """judge "serengpt" needs model_dir (a SerenGPT model dir) and small n_users: it scores every candidate."""
    task = simulate(
        n_users=n_users,
        n_items=n_items,
        rounds=rounds,
        k=k,
        retrain_every=retrain_every,
        n_candidates=n_candidates,
        judge=judge,
        model_dir=model_dir,
        hidden_sibling_share=hidden_sibling_share,
        sweep_shares=sweep_shares,
        replay_dir=replay_dir,
        seed=seed,
    ).set_display_name("closed-loop simulation")
    return task.outputs["metrics"]
