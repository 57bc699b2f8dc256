"""Fixtures for monitoring tests: judgments of a stand-in scorer on the synthetic generator.

reference = users A of a `shift=0` population judged at validation time (80% into the log, so
later interactions give feedback); current (no drift) = users B of the same population judged an
hour ago; current (drift) = users B of the `shift=1` population (more curious users, other favourite
categories; same catalogue) judged an hour ago. `fake_kfp` is the Kubeflow API stand-in of
tests/pipelines (loaded from there, so there is one fake).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest


@dataclass(frozen=True)
class JudgmentFiles:
    dataset: Path  # the shift=0 dataset (interactions give feedback)
    reference: Path  # parquet
    current_nodrift: Path  # folder of parts
    current_drift: Path  # folder of parts
    reference_df: pd.DataFrame
    nodrift_df: pd.DataFrame
    drift_df: pd.DataFrame


@pytest.fixture(scope="session")
def judgment_files(tmp_path_factory: pytest.TempPathFactory) -> JudgmentFiles:
    from monitoring.judgments import append_judgments, write_reference
    from monitoring.synthetic import synthetic_judgments
    from seren.data import save_dataset
    from seren.data.synthetic import SyntheticConfig, generate

    root = tmp_path_factory.mktemp("judgments")
    d0 = generate(SyntheticConfig(n_users=120, n_items=200, seed=3))
    d1 = generate(SyntheticConfig(n_users=120, n_items=200, seed=3, shift=1.0))
    save_dataset(d0, root / "dataset")
    recent = pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)
    ref = synthetic_judgments(d0)
    users = sorted(ref["user_id"].unique())
    group_a, group_b = users[::2], users[1::2]
    ref = ref[ref["user_id"].isin(group_a)]
    nodrift = synthetic_judgments(d0, users=group_b, judged_at=recent)
    drift = synthetic_judgments(d1, users=group_b, judged_at=recent)
    write_reference(ref, root / "reference.parquet")
    append_judgments(nodrift, root / "nodrift", run_id="r1")
    append_judgments(drift, root / "drift", run_id="r1")
    return JudgmentFiles(
        root / "dataset", root / "reference.parquet", root / "nodrift", root / "drift", ref, nodrift, drift
    )
