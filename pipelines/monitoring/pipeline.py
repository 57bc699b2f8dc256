"""seren-monitoring: Evidently drift of SerenGPT judgments, gated retraining.

judgment drift (reference = validation-time judgments: with `environment`, those registered with the
version deployed there; current = nearline judgments in the window)
-> dsl.If(drifted == "true") -> trigger the retraining pipeline (SerenGPT training by default): a
Kubeflow run when `kfp_host` (or $SEREN_KFP_HOST in the step's environment) is set, else a local
run. Schedule it next to the nearline job, e.g. `seren pipeline schedule monitoring --every 1d`.
"""

from kfp import dsl
from kfp.dsl import HTML

from components.drift.component import judgment_drift
from components.trigger_training.component import trigger_training

# Local runs (`seren pipeline run monitoring --local`, the demo): the default file locations under
# $SEREN_HOME, the last day of judgments, and no KFP host (a drift retrains locally).
DEFAULT_PARAMS: dict = {"window": "1d", "target_pipeline": "serengpt_training"}


@dsl.pipeline(
    name="seren-monitoring",
    description="Evidently drift and quality reports on SerenGPT judgments (reference vs nearline window) with pass/fail gates; a failed gate triggers the SerenGPT training pipeline.",
)
def pipeline(
    reference: str = "",
    current: str = "",
    window: str = "1d",
    end: str = "now",
    dataset: str = "",
    gates: dict = {},  # noqa: B006 - KFP needs a literal default; kfp.local rejects None for dicts
    reports_dir: str = "",
    workspace: str = "",
    k: int = 10,
    target_pipeline: str = "serengpt_training",
    target_params: dict = {},  # noqa: B006
    kfp_host: str = "",
    experiment: str = "seren",
    dry_run: bool = False,
    environment: str = "",
) -> HTML:
    """Paths "" = $SEREN_HOME defaults (reference_judgments.parquet, judgments/, reports/, evidently_workspace/).
    target_pipeline/target_params: what a drift starts; kfp_host "" = $SEREN_KFP_HOST or a local run;
    dry_run: alert only (record what would start, start nothing); environment: compare against the reference
    judgments registered with the version deployed there (dev, staging, prod; reference must be "")."""
    drift = judgment_drift(
        reference=reference,
        current=current,
        window=window,
        end=end,
        dataset=dataset,
        gates=gates,
        reports_dir=reports_dir,
        workspace=workspace,
        k=k,
        environment=environment,
    ).set_display_name("judgment drift (Evidently)")
    drift.set_caching_options(False)  # reads judgments that change between runs
    # the drift step's single output is its drifted flag (see components/drift: kfp.local resolves
    # conditions on `<task>-Output` only)
    with dsl.If(drift.outputs["Output"] == "true", name="drift-detected"):
        trigger = trigger_training(
            pipeline=target_pipeline,
            params=target_params,
            kfp_host=kfp_host,
            experiment=experiment,
            reason="judgment drift: a monitoring gate failed",
            dry_run=dry_run,
        ).set_display_name("trigger retraining")
        trigger.set_caching_options(False)
    return drift.outputs["report"]
