"""LoraTrainingConfig is the one definition of SerenGPT's LoRA training knobs: the distill and align
components, the serengpt_training pipeline and `seren serengpt train` carry exactly its fields with its
defaults (flags unchanged), and a bad value is one line."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from components.align.component import align
from components.distill.component import distill
from pipelines.serengpt_training.pipeline import pipeline
from seren.commands._model_options import option_flags
from seren.commands.serengpt import app
from seren.errors import ConfigError
from seren.serengpt.config import PREF_FIELDS, SFT_FIELDS, LoraTrainingConfig

FIELDS = {name: f.default for name, f in LoraTrainingConfig.model_fields.items()}


def _defaults(component, skip: set[str]) -> dict:
    params = inspect.signature(component.python_func).parameters
    return {k: p.default for k, p in params.items() if k not in skip}


def test_components_pipeline_and_cli_carry_exactly_the_model_fields() -> None:
    sft = _defaults(distill, {"training_data", "model", "metrics"})
    pref = _defaults(align, {"training_data", "sft_model", "model", "metrics"})
    assert sft == {k: FIELDS[k] for k in SFT_FIELDS}
    assert pref == {k: FIELDS[k] for k in PREF_FIELDS}
    assert set(sft) | set(pref) == set(FIELDS) - {"token_budget"}  # the profiles step takes the budget

    spec = pipeline.component_spec.inputs
    assert {k: spec[k].default for k in FIELDS} == FIELDS  # the compiled pipeline's parameters
    assert FIELDS["sft_steps"] == 60 and FIELDS["pref_learning_rate"] == 0.0002  # the measured CPU budget

    train = typer.main.get_command(app).commands["train"]
    opts = {p.name: p for p in train.params}
    assert {k: opts[k].default for k in FIELDS} == FIELDS
    assert set(opts) - set(FIELDS) == {"data", "out", "force", "threads", "human", "movies", "as_json"}
    assert all(opts[k].opts == option_flags(LoraTrainingConfig)[k] for k in FIELDS)
    assert (opts["sft_steps"].opts, opts["sft_learning_rate"].opts, opts["pref_learning_rate"].opts) == (
        ["--max-steps"],
        ["--sft-lr"],
        ["--pref-lr"],
    )
    bad = CliRunner().invoke(app, ["train", "--data", "d", "--out", "o", "--loss", "ppo"])
    assert bad.exit_code == 2 and "'--loss'" in bad.output  # the choices come from the model's Literal


def test_a_bad_value_is_one_line_in_the_component_too(tmp_path: Path) -> None:
    """The component checks its inputs before reading anything (the inputs here do not exist)."""
    from kfp import dsl

    with pytest.raises(ConfigError) as err:
        align.python_func(
            training_data=dsl.Dataset(name="td", uri="/nonexistent"),
            sft_model=dsl.Model(name="sft", uri="/nonexistent"),
            model=dsl.Model(name="model", uri=str(tmp_path / "model")),
            metrics=dsl.Metrics(name="metrics", uri=str(tmp_path / "metrics")),
            pref_steps=0,
        )
    assert not (tmp_path / "model").exists()
    assert err.value.line() == (
        "invalid LoRA training setting: pref_steps must be >= 1 (got 0). Fix: pass a value in the allowed range"
    )
