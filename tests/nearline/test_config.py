"""NearlineConfig is the one definition of nearline's settings: the components, the pipeline and the
CLI carry exactly its fields with its defaults; validation is one line; the scorer card comes from
the registry environment and the exploration bundle through one resolver."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import pytest
import typer

from components.nearline.component import nearline_commit, nearline_plan, nearline_refresh, nearline_shard
from pipelines.nearline.pipeline import pipeline
from seren.commands._model_options import option_flags
from seren.commands.nearline import app
from seren.errors import ConfigError
from seren.nearline.config import NearlineConfig
from seren.nearline.sources import resolve_exploration, resolve_scorer

FIELDS = {name: f.default for name, f in NearlineConfig.model_fields.items()}


def _defaults(component, skip: set[str]) -> dict:
    params = inspect.signature(component.python_func).parameters
    return {k: p.default for k, p in params.items() if k not in skip}


def test_components_pipeline_and_cli_carry_exactly_the_model_fields() -> None:
    assert _defaults(nearline_refresh, {"summary", "metrics"}) == FIELDS
    assert _defaults(nearline_shard, {"window", "metrics"}) == FIELDS
    for part, skip in ((nearline_plan, {"shards"}), (nearline_commit, {"plan", "results", "summary", "metrics"})):
        sub = _defaults(part, skip)
        assert sub and all(FIELDS[k] == v for k, v in sub.items()), part.name  # a subset, same defaults
    spec = {k: v.default for k, v in pipeline.component_spec.inputs.items()}
    assert spec == {**FIELDS, "shards": 1}  # the compiled pipeline's parameters

    run = typer.main.get_command(app).commands["run"]
    opts = {p.name: p for p in run.params}
    assert {k: opts[k].default for k in FIELDS} == FIELDS
    assert set(opts) - set(FIELDS) == {"every", "once", "max_runs", "shards", "as_json"}
    assert all(opts[k].opts == option_flags(NearlineConfig)[k] for k in FIELDS)
    assert opts["dataset_dir"].opts == ["--data", "-d"] and opts["triton_url"].opts == ["--url"]


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"k_main": 0}, "k_main must be >= 1 (got 0)"),
        ({"threshold": 1.5}, "threshold must be <= 1.0 (got 1.5)"),
        ({"threshold": -0.5}, "threshold: must be -1 (the model card's decision threshold) or between 0 and 1"),
        ({"scoring": "fast"}, "scoring must be 'packed' or 'pair' (got 'fast')"),
        ({"protocol": "udp"}, "protocol must be 'http' or 'grpc'"),
        ({"token_budget": 4}, "token_budget: must be 0 (the model card's) or >= 8 (got 4)"),
        ({"initial_lookback": "soon"}, "initial lookback 'soon' is not a positive duration"),
        ({"k_mian": 3}, "unknown nearline setting 'k_mian'"),
    ],
)
def test_bad_settings_are_one_line(kw: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        NearlineConfig.model_validate(kw)
    line = err.value.line()
    assert needle in line and "Fix:" in line and "\n" not in line


def test_none_and_kfp_empty_values_mean_the_default() -> None:
    a = NearlineConfig(token_budget=None, judgments_dir=None, initial_lookback="")
    assert (a.token_budget, a.judgments_dir, a.lookback()) == (0, "", None)
    assert str(NearlineConfig(initial_lookback="36h").lookback()) == "1 days 12:00:00"


@pytest.fixture
def deployed(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """serengpt v1 (the tiny model) registered and pointed to by dev, in a fresh local registry."""
    from seren.registry import Registry

    monkeypatch.setenv("SEREN_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.setenv("SEREN_TRITON_URL_DEV", "127.0.0.1:18000")
    reg = Registry(str(tmp_path / "registry"))
    man = reg.register("serengpt", model_dir=tiny_model_dir)
    reg.swap_pointer("serengpt", "dev", {"version": man["version"]}, expected_generation=0)
    return reg


def test_environment_resolves_the_deployed_card(deployed, tiny_model_dir: Path) -> None:
    from seren.serengpt.recipe import model_recipe

    got = resolve_scorer(NearlineConfig(environment="dev"))
    assert (got["source"], got["environment"], got["version"]) == ("registry", "dev", 1)
    assert Path(got["model_dir"]) == deployed.local_copy("serengpt", 1) / "model"
    assert got["token_budget"] == model_recipe(tiny_model_dir)["token_budget"]
    assert got["triton_url"].endswith("127.0.0.1:18000")  # the environment's Triton
    # the same model given explicitly agrees with the deployed card
    assert resolve_scorer(NearlineConfig(environment="dev", model=str(tiny_model_dir)))["version"] == 1
    # without an environment, --model supplies the card as before
    assert resolve_scorer(NearlineConfig(model=str(tiny_model_dir))) == {
        "source": "model",
        "model_dir": str(tiny_model_dir),
    }


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"environment": "dev", "model": "smollm2"}, "--model smollm2 disagrees with serengpt v1 deployed to 'dev'"),
        ({"environment": "dev", "token_budget": 999}, "--token-budget 999 differs from the"),
        ({"environment": "staging"}, "no serengpt version is deployed to environment 'staging'"),
        ({"environment": "qa"}, "unknown environment 'qa'"),
    ],
)
def test_a_scorer_that_disagrees_with_the_deployment_is_refused(deployed, kw: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_scorer(NearlineConfig(**kw))
    assert needle in err.value.line() and "Fix:" in err.value.line()


def test_exploration_bundle_resolves_in_one_place(tmp_path: Path) -> None:
    root = tmp_path / "exploration"
    with pytest.raises(ConfigError, match=f"no clusters at {root / 'clusters'}"):
        resolve_exploration(NearlineConfig(exploration_dir=str(root)))
    (root / "clusters").mkdir(parents=True)
    (root / "seqrec").mkdir()
    (root / "pair_table.parquet").write_bytes(b"table")
    (root / "exploration.json").write_text(json.dumps({"dataset": "/data/x", "created": "2026-12-05T10:00:00+00:00"}))
    b = resolve_exploration(NearlineConfig(exploration_dir=str(root)))
    assert (b.dataset, b.pair_table) == ("/data/x", root / "pair_table.parquet")
    rec = b.record()
    assert rec["created"] == "2026-12-05T10:00:00+00:00" and rec["dir"] == str(root)
    assert rec["pair_table_sha256"] == hashlib.sha256(b"table").hexdigest()[:16]


@pytest.mark.integration
def test_a_run_with_an_environment_scores_with_the_deployed_card(
    deployed, few_users: Path, triton, exploration_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --model, no --url: the tokenizer, budget and Triton come from what dev serves."""
    from seren.nearline import run_nearline
    from seren.serengpt.recipe import model_recipe

    monkeypatch.setenv("SEREN_TRITON_URL_DEV", triton.http_url)  # dev's live Triton
    cfg = NearlineConfig(
        environment="dev",
        dataset_dir=str(few_users),
        exploration_dir=str(exploration_dir),
        k_main=4,
        k_explore=3,
        top_n=3,
        threshold=0.0,
        feast_target="local",
        feast_data_dir=str(tmp_path / "features"),
        judgments_dir="none",
    )
    res = run_nearline(cfg)
    scorer = res["sources"]["scorer"]
    assert (scorer["source"], scorer["environment"], scorer["version"]) == ("registry", "dev", 1)
    assert cfg.triton_url == scorer["triton_url"] and triton.http_url.split("//")[-1] in cfg.triton_url
    assert (
        cfg.scorer_dir == scorer["model_dir"] and scorer["token_budget"] == model_recipe(cfg.scorer_dir)["token_budget"]
    )
    assert res["users_refreshed"] == 4 and res["items_scored"] > 0


def test_threshold_defaults_to_the_cards_decision_threshold(tiny_model_dir: Path, tmp_path: Path) -> None:
    """-1 (the default) reads the card's rate-matched threshold; an explicit value wins; a card
    without one (or no card) judges at 0.5."""
    from seren.nearline.sources import decision_threshold
    from seren.serengpt.evaluate import finalize_model

    cal = {"method": "platt", "params": {"a": 1.0, "b": -1.0}, "decision_threshold": 0.237}
    shipped = finalize_model(tiny_model_dir, tmp_path / "shipped", {"chosen": "SFT", "calibration": cal})
    assert decision_threshold(NearlineConfig(model=str(shipped))) == 0.237
    assert decision_threshold(NearlineConfig(model=str(shipped), threshold=0.6)) == 0.6
    assert decision_threshold(NearlineConfig(model=str(shipped), threshold=0.0)) == 0.0
    assert decision_threshold(NearlineConfig(model=str(tiny_model_dir))) == 0.5
