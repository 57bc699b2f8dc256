"""cognition_profiles component: unit test via python_func, local run with kfp.local."""

# no `from __future__ import annotations`: KFP reads the pipeline's parameter annotations
from pathlib import Path

import pandas as pd
import pytest
from kfp import dsl

from components.profiles.component import cognition_profiles
from seren.errors import DataError
from seren.profiles import read_profiles


def test_profiles_component_unit(artifact, small_dataset: Path, tiny_model_dir: Path) -> None:
    data = dsl.Dataset(name="dataset", uri=str(small_dataset))
    out, metrics = artifact(dsl.Dataset, "profiles"), artifact(dsl.Metrics, "metrics")
    cognition_profiles.python_func(
        dataset=data,
        profiles=out,
        metrics=metrics,
        base_model=str(tiny_model_dir),
        token_budget=96,
        label_frac=0.5,
        snapshots=2,
    )
    df = read_profiles(out.path)
    assert df["profile_tokens"].max() <= 96
    # per-user cutoffs (the default): two snapshots per user, at each user's own event quantiles
    assert df.groupby("user_id").size().max() == 2 and df["as_of"].nunique() > 2
    assert out.metadata["as_of"] == df["as_of"].min().isoformat()
    m = metrics.metadata
    assert m["compression_ratio"] > 1 and m["n_snapshots"] == 2 and m["n_users"] == len(df)
    assert m["mean_profile_tokens"] == pytest.approx(df["profile_tokens"].mean(), abs=0.01)


def test_profiles_component_bad_input_unit(artifact, tmp_path: Path, tiny_model_dir: Path) -> None:
    data = dsl.Dataset(name="dataset", uri=str(tmp_path / "missing"))
    out, metrics = artifact(dsl.Dataset, "profiles"), artifact(dsl.Metrics, "metrics")
    with pytest.raises(DataError, match="does not exist"):
        cognition_profiles.python_func(dataset=data, profiles=out, metrics=metrics, base_model=str(tiny_model_dir))
    assert not Path(out.path).exists()


def test_profiles_component_local(kfp_local, small_dataset: Path, tiny_model_dir: Path) -> None:
    """kfp.local runs artifact inputs only inside a pipeline: importer(dataset) -> cognition_profiles."""

    @dsl.pipeline(name="profiles-local-test")
    def pipe(data_uri: str, base_model: str):
        data = dsl.importer(artifact_uri=data_uri, artifact_class=dsl.Dataset, reimport=False)
        cognition_profiles(dataset=data.output, base_model=base_model, label_frac=0.0)

    pipe(data_uri=str(small_dataset), base_model=str(tiny_model_dir))
    files = sorted(Path(kfp_local).rglob("cognition-profiles/profiles"))
    assert len(files) == 1, "the profiles task did not write its artifact"
    df = pd.read_parquet(files[0])
    assert len(df) == 80 and df["as_of"].isna().all()  # whole history: the serving profile
    assert df["profile_tokens"].max() <= 160 and df.attrs["metrics"]["compression_ratio"] > 1
