"""align component: unit test via python_func, local test with kfp.local (importers -> align)."""

# no `from __future__ import annotations`: KFP reads the pipeline's parameter annotations
import json
from pathlib import Path

import pytest
from kfp import dsl

from components.align.component import align
from seren.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("loss", ["ipo", "dpo"])
def test_align_component_unit(artifact, training_data: Path, tiny_model_dir: Path, loss: str) -> None:
    model, metrics = artifact(dsl.Model, "model"), artifact(dsl.Metrics, "metrics")
    align.python_func(
        training_data=dsl.Dataset(name="td", uri=str(training_data)),
        sft_model=dsl.Model(name="sft", uri=str(tiny_model_dir)),
        model=model,
        metrics=metrics,
        loss=loss,
        pref_steps=1,
        pref_max_examples=8,
        pref_batch_size=4,
    )
    card = json.loads((Path(model.path) / "model_card.json").read_text())
    assert card["stage"] == f"sft+{loss}" and card["parent_model"] == str(tiny_model_dir)
    assert metrics.metadata["steps"] == 1 and metrics.metadata["data.n_pairs"] == 8
    assert not (Path(model.path) / "adapter_config.json").exists()


def test_align_component_unknown_loss_unit(artifact, training_data: Path, tiny_model_dir: Path) -> None:
    model = artifact(dsl.Model, "model")
    with pytest.raises(ConfigError, match="loss must be 'ipo' or 'dpo' \\(got 'ppo'\\)"):
        align.python_func(
            training_data=dsl.Dataset(name="td", uri=str(training_data)),
            sft_model=dsl.Model(name="sft", uri=str(tiny_model_dir)),
            model=model,
            metrics=artifact(dsl.Metrics, "metrics"),
            loss="ppo",
        )
    assert not Path(model.path).exists()


def test_align_component_local(kfp_local, training_data: Path, tiny_model_dir: Path) -> None:
    @dsl.pipeline(name="align-local-test")
    def pipe(td_uri: str, sft_uri: str):
        td = dsl.importer(artifact_uri=td_uri, artifact_class=dsl.Dataset, reimport=False)
        sft = dsl.importer(artifact_uri=sft_uri, artifact_class=dsl.Model, reimport=False)
        align(training_data=td.output, sft_model=sft.output, pref_steps=1, pref_max_examples=8, pref_batch_size=4)

    pipe(td_uri=str(training_data), sft_uri=str(tiny_model_dir))
    models = sorted(Path(kfp_local).rglob("align/model"))
    assert len(models) == 1, "the align task did not write its model"
    assert json.loads((models[0] / "model_card.json").read_text())["stage"] == "sft+ipo"


def test_align_component_onpolicy_records_the_selection(artifact, training_data: Path, tiny_model_dir: Path) -> None:
    """pref_pairs=onpolicy: the SFT model scores every preference prompt, the pairs it gets wrong are
    trained on, and the selection stats land in the card and the metrics."""
    from seren.serengpt.labeling import TrainingData
    from seren.serengpt.onpolicy import select_onpolicy, sft_p_yes

    pref = TrainingData.load(training_data).pref_train
    expected = select_onpolicy(pref, sft_p_yes(tiny_model_dir, pref["prompt"].tolist()))
    assert len(expected) > 0  # the tiny random policy contradicts some labels
    model, metrics = artifact(dsl.Model, "model"), artifact(dsl.Metrics, "metrics")
    align.python_func(
        training_data=dsl.Dataset(name="td", uri=str(training_data)),
        sft_model=dsl.Model(name="sft", uri=str(tiny_model_dir)),
        model=model,
        metrics=metrics,
        pref_pairs="onpolicy",
        pref_steps=1,
        pref_max_examples=4,
        pref_batch_size=4,
    )
    card = json.loads((Path(model.path) / "model_card.json").read_text())
    stats = card["data"]["preference"]["onpolicy"]
    assert stats["n_candidates"] == len(pref) and stats["n_contradicted"] == len(expected)
    assert stats["contradicted_positive"] == int((expected["label"] == 1).sum())
    assert stats["contradicted_negative"] == int((expected["label"] == 0).sum())
    assert stats["mean_confidence"] == pytest.approx(expected["confidence"].mean())
    assert card["data"]["preference"]["n_pairs"] == min(4, len(expected)) and card["stage"] == "sft+ipo"
    assert metrics.metadata["data.onpolicy.n_contradicted"] == len(expected) and metrics.metadata["steps"] == 1
