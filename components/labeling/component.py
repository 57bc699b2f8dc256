"""Labeling/enrichment: dataset + profiles -> training-data dir (SFT, preference pairs, ranking
candidates, merged labels) + metrics (label counts per source, balance, split sizes)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def label_data(
    dataset: Input[Dataset],
    profiles: Input[Dataset],
    training_data: Output[Dataset],
    metrics: Output[Metrics],
    base_model: str = "smollm2",
    human_csv: str = "",
    teacher: str = "none",
    teacher_max: int = 0,
    test_frac: float = 0.25,
    seed: int = 0,
    human_survey: str = "",
    human_survey_movies: str = "",
):
    """teacher: none | local | openai (env SEREN_OPENAI_*); teacher_max: 0 = judge every labeled pair;
    human_survey: a Serendipity-2018 survey whose judgments join training as source "human" ("" = none),
    its movieIds joined with the MovieLens folder human_survey_movies ("" = the dataset)."""
    from seren.serengpt.labeling import run_labeling

    stats = run_labeling(
        dataset.path,
        profiles.path,
        training_data.path,
        base_model=base_model,
        human_csv=human_csv or None,
        teacher=teacher,
        teacher_max=teacher_max or None,
        test_frac=test_frac,
        seed=seed,
        survey=human_survey or None,
        survey_movies=human_survey_movies or None,
    )
    for key, value in stats.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics.log_metric(key, value)
