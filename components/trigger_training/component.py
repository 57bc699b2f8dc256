"""Retraining trigger: start the SerenGPT training pipeline (or any named pipeline) after drift.

On Kubeflow when `kfp_host` (or $SEREN_KFP_HOST) is set, else a local kfp.local run in this
container. The started run is described in the `run_info` artifact.
"""

from kfp import dsl
from kfp.dsl import Artifact, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def trigger_training(
    run_info: Output[Artifact],
    pipeline: str = "serengpt_training",
    params: dict = {},  # noqa: B006 - KFP needs a literal default; kfp.local rejects None for dicts
    kfp_host: str = "",
    experiment: str = "seren",
    reason: str = "",
    dry_run: bool = False,
) -> str:
    """Returns the started run's id (Kubeflow run id, or the local run's folder name; "dry-run" when
    dry_run only records what would start)."""
    import json
    from pathlib import Path

    from monitoring.retrain import trigger_training as start

    info = start(pipeline, params, kfp_host or None, experiment, reason, dry_run)
    Path(run_info.path).parent.mkdir(parents=True, exist_ok=True)
    Path(run_info.path).write_text(json.dumps(info, indent=2, default=str))
    run_info.metadata.update({"mode": info["mode"], "pipeline": info["pipeline"], "run_id": info["run_id"]})
    return info["run_id"]
