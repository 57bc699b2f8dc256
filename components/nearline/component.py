"""Nearline refresh (SERAL stage 3): changed users since the watermark -> profiles -> candidates ->
SerenGPT on Triton -> Feast; in one task (nearline_refresh) or sharded: nearline_plan ->
ParallelFor(nearline_shard) -> nearline_commit. Paths, not artifacts: the event log, the exploration outputs, the
Feast repo and the watermark outlive any one pipeline run (shared storage on Kubeflow)."""

from typing import List  # noqa: UP035 - KFP reads typing.List

from kfp import dsl
from kfp.dsl import Artifact, Metrics, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def nearline_refresh(
    summary: Output[Artifact],
    metrics: Output[Metrics],
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
) -> str:
    """Returns the watermark after the run. "" = defaults: dataset of the published exploration run,
    $SEREN_TRITON_URL or 127.0.0.1:8000, $SEREN_HOME/exploration, the model card's token budget,
    $SEREN_FEAST_TARGET / $SEREN_HOME/features, <features>/nearline, $SEREN_HOME/monitoring/judgments;
    initial_lookback "" = the first run refreshes every user (else e.g. "1d" before the newest event)."""
    import json
    import os
    from pathlib import Path

    from seren.nearline import NearlineConfig, run_nearline

    cfg = NearlineConfig(
        dataset_dir=dataset_dir,
        triton_url=triton_url or os.environ.get("SEREN_TRITON_URL", "127.0.0.1:8000"),
        exploration_dir=exploration_dir or None,
        model=model,
        token_budget=token_budget or None,
        k_main=k_main,
        k_explore=k_explore,
        n_novel=n_novel,
        top_n=top_n,
        threshold=threshold,
        batch_size=batch_size,
        timeout_s=timeout_s,
        feast_target=feast_target or None,
        feast_data_dir=feast_data_dir or None,
        state_uri=state_uri or None,
        judgments_dir=judgments_dir or None,
        initial_lookback=initial_lookback or None,
    )
    res = run_nearline(cfg)
    Path(summary.path).parent.mkdir(parents=True, exist_ok=True)
    Path(summary.path).write_text(json.dumps(res, indent=2, default=str))
    for key in ("users_changed", "users_refreshed", "users_skipped_no_history", "items_scored", "candidates_kept"):
        metrics.log_metric(key, res[key])
    for stage, seconds in res["stage_seconds"].items():
        metrics.log_metric(f"seconds_{stage}", seconds)
    summary.metadata.update({"watermark": res["watermark_after"], "window_end": res["window_end"]})
    return str(res["watermark_after"] or "")


# ------------------------------------------------------------------ sharded nearline (plan -> shards -> commit)


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def nearline_plan(
    shards: int = 1,
    dataset_dir: str = "",
    exploration_dir: str = "",
    feast_target: str = "",
    feast_data_dir: str = "",
    state_uri: str = "",
    initial_lookback: str = "",
) -> List[dict]:  # noqa: UP006 - KFP reads typing.List
    """Fix the window (watermark, newest event] once for every shard; one ParallelFor item per shard
    (users split by sha1 of the user id)."""
    from seren.nearline.shard import config_from_params, plan_window, shard_items

    cfg = config_from_params(
        dataset_dir=dataset_dir,
        exploration_dir=exploration_dir,
        feast_target=feast_target,
        feast_data_dir=feast_data_dir,
        state_uri=state_uri,
        initial_lookback=initial_lookback,
    )
    return shard_items(plan_window(cfg, shards))


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def nearline_shard(
    window: dict,
    metrics: Output[Metrics],
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
) -> dict:
    """One shard of the planned window: its users' profiles -> candidates -> SerenGPT on Triton ->
    Feast push -> judgments. Never moves the watermark; idempotent, so a retry writes the same rows."""
    from seren.nearline.shard import config_from_params, run_shard

    cfg = config_from_params(
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
    )
    res = run_shard(cfg, window, int(window["shard"]))
    for key in ("shard", "users", "users_refreshed", "items_scored", "seconds", "users_per_min"):
        metrics.log_metric(key, res[key])
    return res


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def nearline_commit(
    plan: List[dict],  # noqa: UP006
    results: List[dict],  # noqa: UP006
    summary: Output[Artifact],
    metrics: Output[Metrics],
    dataset_dir: str = "",
    exploration_dir: str = "",
    feast_target: str = "",
    feast_data_dir: str = "",
    state_uri: str = "",
) -> str:
    """The fan-in: every shard of the window succeeded -> the watermark moves to the window end
    (refused if it moved meanwhile). Returns the watermark after the run."""
    import json
    from pathlib import Path

    from seren.nearline.shard import commit_window, config_from_params

    cfg = config_from_params(
        dataset_dir=dataset_dir,
        exploration_dir=exploration_dir,
        feast_target=feast_target,
        feast_data_dir=feast_data_dir,
        state_uri=state_uri,
    )
    window = {k: v for k, v in plan[0].items() if k != "shard"}
    res = commit_window(cfg, window, results)
    Path(summary.path).parent.mkdir(parents=True, exist_ok=True)
    Path(summary.path).write_text(json.dumps(res, indent=2, default=str))
    for key in ("shards", "users_changed", "users_refreshed", "users_skipped_no_history", "items_scored"):
        metrics.log_metric(key, res[key])
    summary.metadata.update({"watermark": res["watermark_after"], "window_end": res["window_end"]})
    return str(res["watermark_after"] or "")
