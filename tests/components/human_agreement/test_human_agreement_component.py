"""human_agreement component: unit test via python_func on the hand-made survey and the tiny model."""

# no `from __future__ import annotations`: KFP reads the pipeline's parameter annotations
import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from kfp import dsl

from components.human_agreement.component import human_agreement
from seren.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")

_spec = importlib.util.spec_from_file_location(
    "survey_handmade", Path(__file__).resolve().parents[2] / "data" / "survey_handmade.py"
)
handmade = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(handmade)


def test_human_agreement_component_unit(artifact, tmp_path: Path, tiny_model_dir: Path) -> None:
    from seren.llm.card import read_model_card
    from seren.serengpt.recipe import prompt_recipe

    answers, ml = handmade.write_fixture(tmp_path, bom=True)
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "model_card.json").write_text(json.dumps({"stage": "sft+ipo", "prompt": prompt_recipe(80)}))
    kw = dict(
        model=dsl.Model(name="model", uri=str(model)),
        metrics=artifact(dsl.Metrics, "metrics"),
        report=artifact(dsl.Markdown, "report"),
        results=artifact(dsl.Artifact, "results"),
        human_dir=str(answers.parent),
        movies_dir=str(ml),
        n_boot=20,
    )
    human_agreement.python_func(**kw)
    m = kw["metrics"].metadata
    assert m["n_rows"] == 6 and m["n_users"] == 2 and m["roc_auc"] == m["serengpt_roc_auc"]
    assert "random_roc_auc" in m and "predictedrating_pearson_flag_mean" in m
    assert "| SerenGPT |" in Path(kw["report"].path).read_text()
    res = json.loads((Path(kw["results"].path) / "human_agreement.json").read_text())
    assert res["recipes"]["SerenGPT"]["token_budget"] == 80 and res["survey"]["n_without_movie"] == 1
    assert read_model_card(model)["human_agreement"]["n_rows"] == 6
    kw["human_dir"] = str(tmp_path / "missing")
    with pytest.raises(DataError, match="does not exist"):
        human_agreement.python_func(**kw)
