"""Human agreement: a SerenGPT model + a Serendipity-2018 survey -> agreement with people's
serendipity judgments (ROC-AUC, PR-AUC, Pearson/Spearman, user-bootstrap intervals, non-LLM
baselines on the same rows) as Metrics, Markdown and a results dir; the model card gets the table."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Markdown, Metrics, Model, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def human_agreement(
    model: Input[Model],
    metrics: Output[Metrics],
    report: Output[Markdown],
    results: Output[Artifact],
    human_dir: str,
    movies_dir: str,
    base_model: str = "",
    token_budget: int = 0,
    n_boot: int = 1000,
    seed: int = 0,
):
    """human_dir: folder (or answers.csv) of the survey; movies_dir: the ml-latest(-small) folder its movieIds
    join; base_model: also a zero-shot row ('' = none); token_budget: 0 = the model card's."""
    from seren.serengpt.human import run_human_agreement

    stats, markdown = run_human_agreement(
        human_dir, movies_dir, model.path, results.path, base_model, token_budget or None, n_boot, seed
    )
    with open(report.path, "w") as fh:
        fh.write(markdown)
    for key, value in stats.items():
        metrics.log_metric(key, value)
