"""Evaluation: held-out users' candidates -> ablation (popularity, unexpectedness x relevance,
zero-shot base LLM, SFT, SFT+alignment) as Metrics, Markdown, HTML and a results dir (JSON +
per-candidate scores), and the shipped model: SFT+alignment only when it beats SFT on the
validation users (the alignment gate), with the calibration map fitted there in its card."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def evaluate(
    training_data: Input[Dataset],
    dataset: Input[Dataset],
    sft_model: Input[Model],
    aligned_model: Input[Model],
    model: Output[Model],
    metrics: Output[Metrics],
    report: Output[Markdown],
    report_html: Output[HTML],
    results: Output[Artifact],
    base_model: str = "smollm2",
    aligned_name: str = "SFT+IPO",
    seed: int = 0,
):
    """Unprefixed metrics (roc_auc, pr_auc, f1, ece, hit@1, ndcg@3; per scorer `<scorer>.roc_auc`) are the shipped model's; `model`
    is the shipped model (calibrated card, results/calibration.json has the same map)."""
    from seren.serengpt.evaluate import evaluate_artifacts

    models = {"zero-shot base LLM": base_model, "SFT": sft_model.path, aligned_name: aligned_model.path}
    stats, markdown, html = evaluate_artifacts(
        training_data.path, dataset.path, models, results.path, seed=seed, model_out=model.path
    )
    with open(report.path, "w") as fh:
        fh.write(markdown)
    with open(report_html.path, "w") as fh:
        fh.write(html)
    model.metadata.update({"alignment_kept": bool(stats.get("alignment_kept"))})
    for key, value in stats.items():
        metrics.log_metric(key, value)
