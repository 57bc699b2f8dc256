"""Feedback alignment: later engagement with novel clusters -> an alignment scorer (2025 follow-up)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def feedback_alignment(
    dataset: Input[Dataset],
    clusters: Input[Artifact],
    transitions: Input[Artifact],
    aligner: Output[Model],
    metrics: Output[Metrics],
    min_support: int = 3,
    prior: float = 5.0,
    seed: int = 0,
):
    """min_support: trials a (c1, c2, c_novel) triple needs to train on; prior: smoothing pseudo-trials."""
    from seren.exploration.workflow import run_feedback_alignment

    out = run_feedback_alignment(
        dataset.path, clusters.path, transitions.path, aligner.path, min_support=min_support, prior=prior, seed=seed
    )
    for key, value in out.items():
        metrics.log_metric(key, value)
