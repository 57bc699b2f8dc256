"""Exploration evaluate: gates + baseline table + alignment gain -> metrics and a Markdown report."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def exploration_evaluate(
    dataset: Input[Dataset],
    clusters: Input[Artifact],
    transitions: Input[Artifact],
    model: Input[Model],
    aligner: Input[Model],
    table: Input[Dataset],
    report: Output[Artifact],
    markdown: Output[Markdown],
    metrics: Output[Metrics],
    seqrec: Input[Model] = None,
    n: int = 3,
    max_test: int = 400,
    seed: int = 0,
    publish_dir: str = "",
):
    """seqrec (optional): the sequence recommender, reported and published for restricted recommendations;
    publish_dir: where `seren explore` reads (\"\" = $SEREN_HOME/exploration, \"none\" = do not publish)."""
    from seren.exploration.workflow import default_publish_dir, run_evaluate

    publish = None if publish_dir == "none" else (publish_dir or str(default_publish_dir()))
    out, md = run_evaluate(
        clusters.path,
        transitions.path,
        model.path,
        aligner.path,
        table.path,
        report.path,
        n=n,
        max_test=max_test,
        seed=seed,
        dataset_dir=dataset.path,
        publish=publish,
        seqrec_dir=seqrec.path if seqrec is not None else None,
    )
    with open(markdown.path, "w") as fh:
        fh.write(md)
    for key, value in out.items():
        metrics.log_metric(key, value)
