"""Nearline refresh (SERAL stage 3): changed users since the watermark -> profiles -> candidates ->
SerenGPT on Triton -> Feast; in one task (nearline_refresh) or sharded: nearline_plan ->
ParallelFor(nearline_shard) -> nearline_commit. Paths, not artifacts: the event log, the exploration outputs, the
Feast repo and the watermark outlive any one pipeline run (shared storage on Kubeflow).

The settings are `seren.nearline.config.NearlineConfig`'s fields with its defaults ("" / 0 = the
documented default); KFP embeds each function's source, so they are written out here, and
tests/nearline/test_config.py fails when they drift from the model. Each body validates them in one
line: `NearlineConfig.from_params(locals())`."""

from typing import List  # noqa: UP035 - KFP reads typing.List

from kfp import dsl
from kfp.dsl import Artifact, Metrics, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def nearline_refresh(
    summary: Output[Artifact],
    metrics: Output[Metrics],
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
) -> str:
    """One nearline run; returns the watermark after it (seren.nearline.run_nearline)."""
    import json
    from pathlib import Path

    from seren.nearline import NearlineConfig, run_nearline
    from seren.nearline.run import run_metrics

    res = run_nearline(NearlineConfig.from_params(locals()))
    Path(summary.path).parent.mkdir(parents=True, exist_ok=True)
    Path(summary.path).write_text(json.dumps(res, indent=2, default=str))
    keys = ("users_changed", "users_refreshed", "users_skipped_no_history", "items_scored", "candidates_kept")
    for key, value in run_metrics(res, keys).items():
        metrics.log_metric(key, value)
    for stage, seconds in res["stage_seconds"].items():
        metrics.log_metric(f"seconds_{stage}", seconds)
    summary.metadata.update({"watermark": res["watermark_after"], "window_end": res["window_end"]})
    return str(res["watermark_after"] or "")


# ------------------------------------------------------------------ sharded nearline (plan -> shards -> commit)


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def nearline_plan(
    shards: int = 1,
    dataset_dir: str = "",
    environment: str = "",
    model: str = "",
    exploration_dir: str = "",
    feast_target: str = "",
    feast_data_dir: str = "",
    state_uri: str = "",
    initial_lookback: str = "",
) -> List[dict]:  # noqa: UP006 - KFP reads typing.List
    """Fix the window (watermark, newest event] once for every shard; one ParallelFor item per shard
    (users split by sha1 of the user id)."""
    from seren.nearline import NearlineConfig
    from seren.nearline.shard import plan_window, shard_items

    return shard_items(plan_window(NearlineConfig.from_params(locals()), shards))


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def nearline_shard(
    window: dict,
    metrics: Output[Metrics],
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
) -> dict:
    """One shard of the planned window: its users' profiles -> candidates -> SerenGPT on Triton ->
    Feast push -> judgments. Never moves the watermark; idempotent, so a retry writes the same rows."""
    from seren.nearline import NearlineConfig
    from seren.nearline.run import run_metrics
    from seren.nearline.shard import run_shard

    res = run_shard(NearlineConfig.from_params(locals()), window, int(window["shard"]))
    for key, value in run_metrics(
        res, ("shard", "users", "users_refreshed", "items_scored", "seconds", "users_per_min")
    ).items():
        metrics.log_metric(key, value)
    return res


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def nearline_commit(
    plan: List[dict],  # noqa: UP006
    results: List[dict],  # noqa: UP006
    summary: Output[Artifact],
    metrics: Output[Metrics],
    dataset_dir: str = "",
    environment: str = "",
    model: str = "",
    exploration_dir: str = "",
    feast_target: str = "",
    feast_data_dir: str = "",
    state_uri: str = "",
) -> str:
    """The fan-in: every shard of the window succeeded -> the watermark moves to the window end
    (refused if it moved meanwhile). Returns the watermark after the run."""
    import json
    from pathlib import Path

    from seren.nearline import NearlineConfig
    from seren.nearline.run import run_metrics
    from seren.nearline.shard import commit_window

    window = {k: v for k, v in plan[0].items() if k != "shard"}
    res = commit_window(NearlineConfig.from_params(locals()), window, results)
    Path(summary.path).parent.mkdir(parents=True, exist_ok=True)
    Path(summary.path).write_text(json.dumps(res, indent=2, default=str))
    keys = ("shards", "users_changed", "users_refreshed", "users_skipped_no_history", "items_scored")
    for key, value in run_metrics(res, keys).items():
        metrics.log_metric(key, value)
    summary.metadata.update({"watermark": res["watermark_after"], "window_end": res["window_end"]})
    return str(res["watermark_after"] or "")
