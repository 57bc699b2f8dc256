"""Judgment drift: reference vs current SerenGPT judgments through Evidently, with the monitoring gates.

Returns the drifted flag ("true"/"false") as its single parameter output `Output`, which the
pipeline's dsl.If tests: kfp.local 2.17 evaluates a condition on a task output only when the
channel is `<task>-Output`; a NamedTuple output such as `drifted` fails to resolve there and the
false branch is taken silently. The status (pass / fail / no_data) is in the summary artifact's
metadata, the Evidently drift report an HTML artifact (the KFP UI shows it), the gate values metrics. Judgments are read from paths (the nearline job's parts
folder and the validation-time reference), not artifacts: they outlive any one pipeline run. With
`environment`, the reference is the one registered with the version deployed there.
"""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Metrics, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def judgment_drift(
    report: Output[HTML],
    summary: Output[Artifact],
    metrics: Output[Metrics],
    reference: str = "",
    current: str = "",
    window: str = "1d",
    end: str = "now",
    dataset: str = "",
    gates: dict = {},  # noqa: B006 - KFP needs a literal default; kfp.local rejects None for dicts
    reports_dir: str = "",
    workspace: str = "",
    k: int = 10,
    environment: str = "",
) -> str:
    """reference/current "" = $SEREN_HOME/monitoring/{reference_judgments.parquet,judgments}; window "1d" or
    "all"; end now | latest | ISO time; dataset: a dataset folder for feedback + recommender quality;
    gates: {max_drift_share, max_score_psi, min_score_ks_pvalue, max_precision_drop, min_feedback_rows};
    environment: take the reference registered with the version deployed there (reference must be "")."""
    import json
    import shutil
    from pathlib import Path

    from monitoring.drift import run_drift

    res = run_drift(
        reference or None,
        current or None,
        window=window,
        end=end,
        dataset=dataset or None,
        gates=gates,
        reports_dir=reports_dir or None,
        workspace=workspace or None,
        k=k,
        environment=environment or None,
    )
    Path(summary.path).parent.mkdir(parents=True, exist_ok=True)
    Path(summary.path).write_text(json.dumps(res, indent=2, default=str))
    drift_html = Path(res["reports_dir"]) / res["files"].get("judgment_drift", {}).get("html", "index.html")
    shutil.copyfile(drift_html, report.path)
    for g in res["gates"]:
        if g["value"] is not None:
            metrics.log_metric(g["name"], g["value"])
    metrics.log_metric("current_rows", res["rows"]["current"])
    summary.metadata.update({"status": res["status"], "drifted": res["drifted"], "reports_dir": res["reports_dir"]})
    return "true" if res["drifted"] else "false"
