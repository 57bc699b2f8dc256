"""distill component: unit test via python_func, local test with kfp.local (importer -> distill)."""

# no `from __future__ import annotations`: KFP reads the pipeline's parameter annotations
import json
from pathlib import Path

import pytest
from kfp import dsl

from components.distill.component import distill
from seren.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")


def _distill(artifact, training_data: Path, tiny_model_dir: Path, **params) -> tuple[Path, dict, dict, dict]:
    """Run the component body; (model dir, its card, metrics, model metadata)."""
    model, metrics = artifact(dsl.Model, "model"), artifact(dsl.Metrics, "metrics")
    distill.python_func(
        training_data=dsl.Dataset(name="td", uri=str(training_data)),
        model=model,
        metrics=metrics,
        base_model=str(tiny_model_dir),
        **params,
    )
    out = Path(model.path)
    return out, json.loads((out / "model_card.json").read_text()), metrics.metadata, model.metadata


def test_distill_component_unit(artifact, training_data: Path, tiny_model_dir: Path) -> None:
    out, card, m, meta = _distill(artifact, training_data, tiny_model_dir, sft_steps=2, max_examples=16, batch_size=4)
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    assert not Path(f"{out}.work").exists(), "the stage work dir (checkpoints) is cleaned up"
    assert m["steps"] == 2 and m["data.n_train"] == card["data"]["n_train"] == 16
    assert m["loss_first"] > 0 and meta["stage"] == "sft"


def test_distill_component_head_method_unit(artifact, training_data: Path, tiny_model_dir: Path) -> None:
    _, card, m, meta = _distill(artifact, training_data, tiny_model_dir, sft_method="head")
    assert card["hyperparameters"]["method"] == "head" and meta["stage"] == "sft"
    assert m["cv_roc_auc"] == card["train_metrics"]["cv_roc_auc"]


def test_distill_component_empty_training_data_unit(
    artifact, training_data: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import shutil

    import pandas as pd

    empty = tmp_path / "td"
    shutil.copytree(training_data, empty)
    pd.read_parquet(empty / "sft_train.parquet").iloc[:0].to_parquet(empty / "sft_train.parquet")
    model = artifact(dsl.Model, "model")
    with pytest.raises(DataError, match="SFT training set is empty"):
        distill.python_func(
            training_data=dsl.Dataset(name="td", uri=str(empty)),
            model=model,
            metrics=artifact(dsl.Metrics, "metrics"),
            base_model=str(tiny_model_dir),
        )
    assert not Path(model.path).exists()


def test_distill_component_local(kfp_local, training_data: Path, tiny_model_dir: Path) -> None:
    @dsl.pipeline(name="distill-local-test")
    def pipe(td_uri: str, base_model: str):
        td = dsl.importer(artifact_uri=td_uri, artifact_class=dsl.Dataset, reimport=False)
        distill(training_data=td.output, base_model=base_model, sft_steps=2, max_examples=8, batch_size=4)

    pipe(td_uri=str(training_data), base_model=str(tiny_model_dir))
    models = sorted(Path(kfp_local).rglob("distill/model"))
    assert len(models) == 1, "the distill task did not write its model"
    assert (models[0] / "config.json").is_file() and (models[0] / "model_card.json").is_file()
