"""Evaluation: held-out users' candidates -> ablation (popularity, unexpectedness x relevance,
zero-shot base LLM, SFT, SFT+alignment) as Metrics, Markdown, HTML and a results dir (JSON +
per-candidate scores)."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def evaluate(
    training_data: Input[Dataset],
    dataset: Input[Dataset],
    sft_model: Input[Model],
    aligned_model: Input[Model],
    metrics: Output[Metrics],
    report: Output[Markdown],
    report_html: Output[HTML],
    results: Output[Artifact],
    base_model: str = "smollm2",
    aligned_name: str = "SFT+IPO",
    seed: int = 0,
):
    """Unprefixed metrics (roc_auc, pr_auc, f1, ece, hit_1, ndcg_3) are the aligned model's."""
    from seren.serengpt.evaluate import evaluate_artifacts

    models = {"zero-shot base LLM": base_model, "SFT": sft_model.path, aligned_name: aligned_model.path}
    stats, markdown, html = evaluate_artifacts(training_data.path, dataset.path, models, results.path, seed=seed)
    with open(report.path, "w") as fh:
        fh.write(markdown)
    with open(report_html.path, "w") as fh:
        fh.write(html)
    for key, value in stats.items():
        metrics.log_metric(key, value)
