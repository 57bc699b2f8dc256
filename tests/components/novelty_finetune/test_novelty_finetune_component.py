"""novelty_finetune component: tiny base model, a few LoRA steps -> a loadable novelty model."""

from pathlib import Path

import pytest
from kfp import dsl

from components.novelty_finetune.component import novelty_finetune
from seren.errors import SerenError
from seren.exploration.novelty import NoveltyModel
from seren.exploration.workflow import run_all


@pytest.fixture(scope="module")
def stages(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_all(
        small_dataset, tmp_path_factory.mktemp("nf_comp"), n_top=3, n_sub=2, until="transitions", publish="none"
    )["dirs"]


def test_novelty_finetune_unit(stages: dict, tiny_model_dir: Path, artifact) -> None:
    model, metrics = artifact(dsl.Model, "model"), artifact(dsl.Metrics, "metrics")
    novelty_finetune.python_func(
        transitions=dsl.Artifact(name="t", uri=stages["transitions"]),
        clusters=dsl.Artifact(name="c", uri=stages["clusters"]),
        model=model,
        metrics=metrics,
        base_model=str(tiny_model_dir),
        max_steps=4,
        batch_size=4,
    )
    assert metrics.metadata["steps"] == 4 and metrics.metadata["loss_first"] > 0
    nm = NoveltyModel.from_pretrained(model.path)
    assert len(nm.ids) == 6
    pair = (nm.ids[0], nm.ids[1])
    assert not set(c for c, _ in nm.top_novel([pair], n=2)[0]) & set(pair)


def test_novelty_finetune_bad_base_model(stages: dict, tmp_path: Path, artifact) -> None:
    with pytest.raises(SerenError, match="does not exist"):
        novelty_finetune.python_func(
            transitions=dsl.Artifact(name="t", uri=stages["transitions"]),
            clusters=dsl.Artifact(name="c", uri=stages["clusters"]),
            model=artifact(dsl.Model, "m"),
            metrics=artifact(dsl.Metrics, "x"),
            base_model=str(tmp_path / "no_model"),
        )
