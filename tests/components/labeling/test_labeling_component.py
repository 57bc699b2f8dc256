"""label_data component: unit test via python_func, local run (ingest -> profiles -> labeling)."""

# no `from __future__ import annotations`: KFP reads the pipeline's parameter annotations
from pathlib import Path

import pandas as pd
import pytest
from kfp import dsl

from components.labeling.component import label_data
from components.profiles.component import cognition_profiles
from seren.errors import ConfigError, DataError
from seren.serengpt.labeling import TrainingData


@pytest.fixture(scope="module")
def profiles_art(tmp_path_factory: pytest.TempPathFactory, small_dataset: Path, tiny_model_dir: Path):
    root = tmp_path_factory.mktemp("labeling_component")
    out = dsl.Dataset(name="profiles", uri=str(root / "profiles"))
    cognition_profiles.python_func(
        dataset=dsl.Dataset(name="dataset", uri=str(small_dataset)),
        profiles=out,
        metrics=dsl.Metrics(name="metrics", uri=str(root / "metrics")),
        base_model=str(tiny_model_dir),
    )
    return out


def test_labeling_component_unit(artifact, profiles_art, small_dataset: Path, tiny_model_dir: Path) -> None:
    out, metrics = artifact(dsl.Dataset, "training_data"), artifact(dsl.Metrics, "metrics")
    label_data.python_func(
        dataset=dsl.Dataset(name="dataset", uri=str(small_dataset)),
        profiles=profiles_art,
        training_data=out,
        metrics=metrics,
        base_model=str(tiny_model_dir),
    )
    td = TrainingData.load(out.path)
    m = metrics.metadata
    assert m["n_train"] == len(td.sft_train) and m["train_positive_rate"] == 0.5
    assert m["labels_human"] + m["labels_behaviour"] == m["n_labels"] == len(td.labels) > 0
    assert set(td.sft_train["user_id"]).isdisjoint(td.sft_test["user_id"])
    assert m["n_snapshots"] == 4


def test_labeling_component_bad_input_unit(
    artifact, profiles_art, small_dataset: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    survey = tmp_path / "survey.csv"
    pd.DataFrame({"user_id": ["ghost"], "item_id": ["i00001"], "serendipity": [5]}).to_csv(survey, index=False)
    out, metrics = artifact(dsl.Dataset, "training_data"), artifact(dsl.Metrics, "metrics")
    kw = dict(
        dataset=dsl.Dataset(name="dataset", uri=str(small_dataset)),
        profiles=profiles_art,
        training_data=out,
        metrics=metrics,
        base_model=str(tiny_model_dir),
    )
    with pytest.raises(DataError, match="unknown user_id.*'ghost'"):
        label_data.python_func(**kw, human_csv=str(survey))
    with pytest.raises(ConfigError, match="unknown text backend"):
        label_data.python_func(**kw, teacher="gpt-9")
    assert not Path(out.path).exists(), "a failed labeling must not leave a partial training-data dir"


def test_labeling_component_local(kfp_local, small_dataset: Path, tiny_model_dir: Path) -> None:
    """importer(dataset) -> cognition_profiles -> label_data in kfp.local."""

    @dsl.pipeline(name="labeling-local-test")
    def pipe(data_uri: str, base_model: str):
        data = dsl.importer(artifact_uri=data_uri, artifact_class=dsl.Dataset, reimport=False)
        prof = cognition_profiles(dataset=data.output, base_model=base_model)
        label_data(dataset=data.output, profiles=prof.outputs["profiles"], base_model=base_model)

    pipe(data_uri=str(small_dataset), base_model=str(tiny_model_dir))
    dirs = sorted(Path(kfp_local).rglob("label-data/training_data"))
    assert len(dirs) == 1, "the labeling task did not write its artifact"
    td = TrainingData.load(dirs[0])
    assert len(td.sft_train) > 0 and td.sft_train["label"].mean() == 0.5
    assert td.metrics["n_labels"] == len(td.labels) and td.metrics["n_snapshots"] == 4
    assert set(td.sft_train["user_id"]).isdisjoint(td.sft_test["user_id"])
