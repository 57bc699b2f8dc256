"""seren-nearline: SERAL stage 3, scheduled as a Kubeflow recurring run.

nearline_refresh: users with events newer than the watermark -> cognition profiles -> candidates
(sequence recommender: main slate + the slate restricted to the novel clusters of the user's last
cluster pair) -> SerenGPT on Triton -> top-N to Feast (online + offline) -> watermark.

`seren pipeline schedule nearline --every 15m` creates the recurring run (one at a time, no
catch-up: a skipped window is covered by the next run, since the watermark only moves on success).
"""

from kfp import dsl
from kfp.dsl import Metrics

from components.nearline.component import nearline_refresh

# Local runs (`seren pipeline run nearline --local`, the demo): everything from $SEREN_HOME defaults
# (the published exploration run names the dataset) and Triton at $SEREN_TRITON_URL.
DEFAULT_PARAMS: dict = {}


@dsl.pipeline(
    name="seren-nearline",
    description="Nearline adaptation: refresh the cognition profiles of users with new events, score their main and exploration candidates with SerenGPT on Triton, push the top serendipitous items to Feast; the watermark moves only after the push.",
)
def pipeline(
    dataset_dir: str = "",
    triton_url: str = "",
    exploration_dir: str = "",
    model: str = "smollm2",
    token_budget: int = 0,
    k_main: int = 20,
    k_explore: int = 10,
    n_novel: int = 3,
    top_n: int = 10,
    threshold: float = 0.5,
    batch_size: int = 64,
    timeout_s: float = 30.0,
    feast_target: str = "",
    feast_data_dir: str = "",
    state_uri: str = "",
    judgments_dir: str = "",
    initial_lookback: str = "",
) -> Metrics:
    """On Kubeflow, point the paths at storage every step mounts (or gs:// for state_uri) and
    triton_url at the in-cluster Triton service."""
    task = nearline_refresh(
        dataset_dir=dataset_dir,
        triton_url=triton_url,
        exploration_dir=exploration_dir,
        model=model,
        token_budget=token_budget,
        k_main=k_main,
        k_explore=k_explore,
        n_novel=n_novel,
        top_n=top_n,
        threshold=threshold,
        batch_size=batch_size,
        timeout_s=timeout_s,
        feast_target=feast_target,
        feast_data_dir=feast_data_dir,
        state_uri=state_uri,
        judgments_dir=judgments_dir,
        initial_lookback=initial_lookback,
    ).set_display_name("nearline refresh")
    task.set_caching_options(False)  # reads a growing event log, writes Feast + the watermark
    return task.outputs["metrics"]
