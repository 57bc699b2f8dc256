"""Cognition profiles (SERAL stage 1): dataset -> profiles parquet (+ compression metrics).

With `label_frac` > 0 (or an explicit `as_of`), each profile snapshot only sees events before its
cutoff; labeling judges the events after it, so labels never leak into prompts.
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
    label_frac: float = 0.8,
    snapshots: int = 4,
    per_user: bool = True,
    as_of: str = "",
    backend: str = "none",
):
    """base_model: name or HF dir whose tokenizer counts the budget; backend: none | local | openai;
    label_frac/snapshots: profiles as of `snapshots` cutoffs spread over the last `label_frac` of
    events (0 = whole history, for serving); per_user: cutoffs at quantiles of each user's own
    events (else of all events); as_of: one explicit ISO cutoff instead."""
    from seren.profiles.io import build_profiles_file

    stats = build_profiles_file(
        dataset.path,
        profiles.path,
        base_model,
        token_budget,
        as_of or None,
        label_frac,
        backend,
        None,
        snapshots,
        per_user and label_frac > 0,
    )
    profiles.metadata["as_of"] = stats["as_of"] or ""
    for key, value in stats.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics.log_metric(key, value)
