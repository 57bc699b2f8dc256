"""novelty_finetune component: tiny base model, a few LoRA steps -> a loadable novelty model."""

from pathlib import Path

import pytest
from kfp import dsl

from components.novelty_finetune.component import novelty_finetune
from seren.errors import SerenError
from seren.exploration.novelty import NoveltyModel


@pytest.fixture(scope="module")
def stages(exploration_stages: dict) -> dict:
    """Stage outputs up to the sequence recommender (tests/components/conftest.py)."""
    return exploration_stages


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
