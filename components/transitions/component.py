"""Transitions: positive sequences -> novel (c1, c2) -> c_next triples, split by time."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def transitions(
    dataset: Input[Dataset],
    clusters: Input[Artifact],
    transitions: Output[Artifact],
    metrics: Output[Metrics],
    min_count: int = 1,
    test_frac: float = 0.2,
):
    """min_count drops rarer training transitions; test_frac = share of triples (by time) held out."""
    from seren.exploration.workflow import run_transitions

    for key, value in run_transitions(
        dataset.path, clusters.path, transitions.path, min_count=min_count, test_frac=test_frac
    ).items():
        metrics.log_metric(key, value)
