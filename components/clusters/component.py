"""Clusters: dataset items -> interest clusters (ids, descriptions, assignments, centroids)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def clusters(
    dataset: Input[Dataset],
    clusters: Output[Artifact],
    metrics: Output[Metrics],
    n_top: int = 8,
    n_sub: int = 5,
    n_keywords: int = 3,
    naming_backend: str = "none",
    seed: int = 0,
):
    """n_top x n_sub clusters (the granularity knob); naming_backend none|local|openai renames clusters."""
    from seren.exploration.workflow import run_clusters

    for key, value in run_clusters(
        dataset.path,
        clusters.path,
        n_top=n_top,
        n_sub=n_sub,
        seed=seed,
        n_keywords=n_keywords,
        naming_backend=naming_backend,
    ).items():
        metrics.log_metric(key, value)
