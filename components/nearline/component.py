"""Nearline refresh (SERAL stage 3): changed users since the watermark -> profiles -> candidates ->
SerenGPT on Triton -> Feast. Paths, not artifacts: the event log, the exploration outputs, the
Feast repo and the watermark outlive any one pipeline run (shared storage on Kubeflow)."""

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
