"""Cognition profiles (SERAL stage 1): dataset -> profiles parquet (+ compression metrics).

With `label_frac` > 0 (or an explicit `as_of`), profiles only see events before the cutoff that
leaves the last `label_frac` of events for labeling, so labels never leak into prompts.
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def cognition_profiles(
    dataset: Input[Dataset],
    profiles: Output[Dataset],
    metrics: Output[Metrics],
    base_model: str = "smollm2",
    token_budget: int = 160,
    label_frac: float = 0.3,
    as_of: str = "",
    backend: str = "none",
):
    """base_model: name or HF dir whose tokenizer counts the budget; backend: none | local | openai."""
    from seren.profiles.io import build_profiles_file

    stats = build_profiles_file(
        dataset.path, profiles.path, base_model, token_budget, as_of or None, label_frac, backend
    )
    profiles.metadata["as_of"] = stats["as_of"] or ""
    for key, value in stats.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics.log_metric(key, value)
