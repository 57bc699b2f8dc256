"""seren-nearline: SERAL stage 3, scheduled as a Kubeflow recurring run.

plan window ─> ParallelFor(shards) ─> [nearline shard] ─> Collected ─> commit watermark

nearline_plan fixes the window (watermark, newest event] and splits its changed users into
`shards` shards by sha1 of the user id; each nearline_shard task (retried on failure) refreshes its
users: cognition profiles -> candidates (sequence recommender: main slate + the slate restricted to
the novel clusters of the user's last cluster pair) -> SerenGPT on Triton -> top-N to Feast (online
+ offline) -> judgments; nearline_commit (the fan-in) moves the watermark only when every shard
succeeded. Scale scoring with Triton replicas behind the one `triton_url` service, and `shards`.

`seren pipeline schedule nearline --every 15m` creates the recurring run (one at a time, no
catch-up: a skipped window is covered by the next run, since the watermark only moves on success).
"""

from kfp import dsl
from kfp.dsl import Metrics

from components.nearline.component import nearline_commit, nearline_plan, nearline_shard

# Local runs (`seren pipeline run nearline --local`, the demo): everything from $SEREN_HOME defaults
# (the published exploration run names the dataset) and Triton at $SEREN_TRITON_URL.
DEFAULT_PARAMS: dict = {}


@dsl.pipeline(
    name="seren-nearline",
    description="Nearline adaptation: refresh the cognition profiles of users with new events, score their main and exploration candidates with SerenGPT on Triton, push the top serendipitous items to Feast; users split into shards (ParallelFor, retried), the watermark moves only after every shard pushed (Collected fan-in).",
)
def pipeline(
    dataset_dir: str = "",
    environment: str = "",
    model: str = "",
    token_budget: int = 0,
    triton_url: str = "",
    protocol: str = "http",
    scoring: str = "packed",
    exploration_dir: str = "",
    clusters_dir: str = "",
    pair_table: str = "",
    seqrec_dir: str = "",
    k_main: int = 20,
    k_explore: int = 10,
    n_novel: int = 3,
    top_n: int = 10,
    threshold: float = -1.0,
    batch_size: int = 64,
    batch_delay_s: float = 0.0,
    timeout_s: float = 30.0,
    retries: int = 3,
    feast_target: str = "",
    feast_data_dir: str = "",
    state_uri: str = "",
    judgments_dir: str = "",
    initial_lookback: str = "",
    shards: int = 1,
) -> Metrics:
    """On Kubeflow, point the paths at storage every step mounts (or gs:// for state_uri) and
    triton_url at the in-cluster Triton service (or name the registry `environment` whose Triton and
    deployed card nearline uses). The parameters are NearlineConfig's fields (+ shards)."""
    params = dict(locals())  # the NearlineConfig fields, handed on by name
    shared = ("dataset_dir", "environment", "model", "exploration_dir", "feast_target", "feast_data_dir", "state_uri")
    paths = {k: params[k] for k in shared}
    plan = nearline_plan(shards=shards, initial_lookback=initial_lookback, **paths).set_display_name("plan window")
    plan.set_caching_options(False)  # reads the watermark and a growing event log
    with dsl.ParallelFor(plan.output, name="shard") as window:
        shard = nearline_shard(window=window, **{k: v for k, v in params.items() if k != "shards"}).set_display_name(
            "nearline shard"
        )
        shard.set_caching_options(False)  # writes Feast + judgments
        shard.set_retry(num_retries=2, backoff_duration="30s", backoff_factor=2.0)  # idempotent: same rows
    commit = nearline_commit(
        plan=plan.output, results=dsl.Collected(shard.outputs["Output"]), **paths
    ).set_display_name("commit watermark")
    commit.set_caching_options(False)  # moves the watermark
    return commit.outputs["metrics"]
