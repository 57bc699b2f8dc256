"""Validation gate: exported scorer vs the torch scorer on held-out candidates (parity, AUC, latency).

Returns `passed` ("true"/"false") as its single parameter output `Output`, which the pipeline's
dsl.If tests (`validate.outputs["Output"] == "true"`): kfp.local 2.17 evaluates a condition on a
task output only when the channel is `<task>-Output`; a NamedTuple output named `passed` fails to
resolve there and the false branch is taken silently. The full report is the `report` artifact
(JSON, `passed` also in its metadata), the gate values are metrics.
"""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def validate_scorer(
    model: Input[Model],
    onnx: Input[Model],
    training_data: Input[Dataset],
    report: Output[Artifact],
    metrics: Output[Metrics],
    judgments: Output[Dataset],
    dataset: Input[Dataset] = None,
    max_rows: int = 128,
    max_abs_diff: float = 0.001,
    auc_delta: float = 0.005,
    seed: int = 0,
    publish_reference: bool = True,
) -> str:
    """passed: "true" when every evaluable gate passed (skipped gates, e.g. no GPU, do not fail).
    With `dataset`, the sample's judgments are the `judgments` output (register stores them in the version as
    monitoring's reference for it) and, when passed, also the local default reference file."""
    from seren.registry.steps import validate_step

    result, flat = validate_step(
        model.path, onnx.path, training_data.path, report.path, max_rows, max_abs_diff, auc_delta, seed,
        dataset_dir=dataset.path if dataset is not None else None, judgments_path=judgments.path,
        publish_reference=publish_reference,
    )  # fmt: skip
    for key, value in flat.items():
        metrics.log_metric(key, value)
    report.metadata["passed"] = bool(result["passed"])
    return "true" if result["passed"] else "false"
