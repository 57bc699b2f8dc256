"""What nearline reads from other pipelines, resolved in one place.

- The scorer's card: with `environment` set, environment -> the version the registry deployed
  there (its pointer) -> that version's model card (tokenizer, profile token budget, prompt
  recipe, calibration) and the environment's Triton. A `model` dir or `token_budget` given as well
  must agree with the deployed card, else the run is refused with one line: prompts built for one
  model and scored by another would be silently wrong. Without `environment`, `model` (a model
  dir with its card, or a base model name) supplies them as before.
- The exploration bundle (dataset, clusters, pair table, sequence recommender): the directory the
  exploration pipeline publishes (`exploration.json` beside the parts; default
  $SEREN_HOME/exploration), resolved by `resolve_exploration` only. The model registry stores
  model versions only, so the bundle is not yet a registered artifact; its path, publication time
  and pair-table hash are recorded in every run summary instead.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seren.errors import ConfigError
from seren.nearline.config import BASE_MODEL, DEFAULT_TRITON_URL, NearlineConfig

# files of a registered version's model (or tokenizer) dir that nearline needs: no weights
_CARD_FILES = (
    "model_card.json",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
    "chat_template.jinja",
)


def resolve(cfg: NearlineConfig) -> NearlineConfig:
    """Fill cfg's "" defaults (scorer, Triton URL, dataset) and check the paths; records what was
    used in `cfg.sources`. Idempotent."""
    scorer = resolve_scorer(cfg)
    if cfg.dataset_dir:
        _check_dataset(cfg.dataset_dir)  # a wrong --data is named before anything else is looked up
    bundle = resolve_exploration(cfg)
    cfg.triton_url = (
        cfg.triton_url or scorer.get("triton_url") or os.environ.get("SEREN_TRITON_URL") or DEFAULT_TRITON_URL
    )
    if not cfg.dataset_dir:
        if not bundle.dataset:
            raise ConfigError(
                f"no dataset given and {bundle.manifest} names none",
                "pass --data DIR (the dataset the features pipeline ingested)",
            )
        _check_dataset(bundle.dataset)
        cfg.dataset_dir = bundle.dataset
    cfg.sources.update(scorer=scorer, exploration=bundle.record())
    return cfg


def _check_dataset(path: str) -> None:
    if not Path(path).is_dir():
        raise ConfigError(
            f"dataset directory {path} does not exist", "pass the dataset the features pipeline ingested (--data DIR)"
        )


# ------------------------------------------------------------------------------------ scorer card


def resolve_scorer(cfg: NearlineConfig) -> dict[str, Any]:
    """{model_dir, source, ...}: where the tokenizer, token budget, recipe and calibration come from.

    With cfg.environment: the registry's deployed version there (refused when nothing is deployed,
    or when cfg.model / cfg.token_budget disagree with its card)."""
    if not cfg.environment:
        return {"source": "model", "model_dir": cfg.model or BASE_MODEL}
    from seren.registry import DEFAULT_MODEL, Registry, load_environments, registry_uri

    envs = load_environments()
    env = envs.env(cfg.environment)  # unknown environment: one line naming the configured ones
    reg = Registry(registry_uri(None, envs))
    version = reg.pointer(DEFAULT_MODEL, env.name).version
    if version is None:
        raise ConfigError(
            f"no {DEFAULT_MODEL} version is deployed to environment {env.name!r} (registry {reg.uri})",
            f"promote one first (`seren registry promote {DEFAULT_MODEL} VERSION {env.name}`) or run without --environment",
        )
    man = reg.manifest(DEFAULT_MODEL, version)
    sub = "model" if man.get("has_model_dir") else "tokenizer"
    only = [f"{sub}/{n}" for n in _CARD_FILES if f"{sub}/{n}" in man.get("files", {})]
    card_dir = reg.local_copy(DEFAULT_MODEL, version, only=only) / sub
    deployed = _card(str(card_dir), None)
    if cfg.model and Path(cfg.model).resolve() != card_dir.resolve():
        given = _card(cfg.model, None)
        diff = [k for k in ("tokenizer", "recipe", "calibration") if given[k] != deployed[k]]
        if diff:
            raise ConfigError(
                f"--model {cfg.model} disagrees with {DEFAULT_MODEL} v{version} deployed to {env.name!r} "
                f"({', '.join(diff)} differ): prompts would be built for one model and scored by another",
                f"drop --model (the deployed card is used) or deploy that model to {env.name!r}",
            )
    if cfg.token_budget and cfg.token_budget != deployed["recipe"].get("token_budget"):
        raise ConfigError(
            f"--token-budget {cfg.token_budget} differs from the {deployed['recipe'].get('token_budget')} tokens "
            f"{DEFAULT_MODEL} v{version} in {env.name!r} was trained with",
            "drop --token-budget (the deployed card's budget is used)",
        )
    return {
        "source": "registry",
        "environment": env.name,
        "registry": reg.uri,
        "model": DEFAULT_MODEL,
        "version": int(version),
        "model_dir": str(card_dir),
        "triton_url": env.triton_url,
        "token_budget": deployed["recipe"].get("token_budget"),
        "calibrated": deployed["calibration"] is not None,
    }


def _card(model: str, token_budget: int | None) -> dict[str, Any]:
    """What must agree between the model prompts are built for and the model that scores them."""
    from seren.llm.calibration import load_calibration
    from seren.serengpt.recipe import model_recipe

    rec = {k: v for k, v in model_recipe(model, token_budget).items() if k != "recorded"}
    tok = Path(model) / "tokenizer.json"
    return {
        "tokenizer": hashlib.sha256(tok.read_bytes()).hexdigest() if tok.is_file() else f"name:{model}",
        "recipe": rec,
        "calibration": load_calibration(model) if Path(model).is_dir() else None,
    }


def token_budget(cfg: NearlineConfig) -> int:
    """The budget the model was trained with (its card), so nearline prompts match training."""
    from seren.serengpt.recipe import model_recipe

    return int(model_recipe(cfg.scorer_dir, cfg.token_budget or None)["token_budget"])


def profile_config(cfg: NearlineConfig) -> Any:
    """The profile knobs of the model's prompt recipe (one prompt per model, wherever it is scored)."""
    from seren.serengpt.recipe import model_recipe
    from seren.serengpt.recipe import profile_config as recipe_profile

    return recipe_profile(model_recipe(cfg.scorer_dir, cfg.token_budget or None))


def calibration(cfg: NearlineConfig) -> dict[str, Any] | None:
    """The card's calibration map: scores and the threshold are calibrated probabilities (issue 12)."""
    from seren.llm.calibration import load_calibration

    return load_calibration(cfg.scorer_dir) if Path(cfg.scorer_dir).is_dir() else None


def decision_threshold(cfg: NearlineConfig) -> float:
    """The score at or above which a candidate is kept and judged serendipitous: cfg.threshold when
    given (>= 0), else the card's rate-matched decision threshold (seren.llm.calibration)."""
    from seren.llm.calibration import decision_threshold as card_threshold

    return float(cfg.threshold) if cfg.threshold >= 0 else card_threshold(calibration(cfg))


@functools.lru_cache(maxsize=4)
def tokenizer(model: str) -> Any:
    """Loaded once per process: a `--every` loop must not pay the tokenizer load on every tick."""
    from seren.profiles import load_tokenizer

    return load_tokenizer(model)


# ------------------------------------------------------------------------------------ exploration


@dataclass(frozen=True)
class ExplorationBundle:
    """Where the exploration pipeline's published outputs are, and which publication they are."""

    root: Path
    clusters_dir: Path
    pair_table: Path
    seqrec_dir: Path
    manifest: Path
    dataset: str | None
    created: str | None

    def record(self) -> dict[str, Any]:
        """What a run summary records: the bundle used, by path, publication time and table hash."""
        digest = hashlib.sha256(self.pair_table.read_bytes()).hexdigest()[:16] if self.pair_table.is_file() else None
        return {
            "dir": str(self.root),
            "created": self.created,
            "dataset": self.dataset,
            "pair_table_sha256": digest,
        }


def resolve_exploration(cfg: NearlineConfig) -> ExplorationBundle:
    """The exploration bundle nearline reads: cfg.exploration_dir (default $SEREN_HOME/exploration),
    single parts overridden by clusters_dir / pair_table / seqrec_dir. Every part must exist: a
    missing one is a one-line error that says how to publish it."""
    from seren.exploration.pair_table import TABLE_FILE
    from seren.paths import exploration_dir

    root = Path(cfg.exploration_dir) if cfg.exploration_dir else exploration_dir()
    parts = {
        "clusters": Path(cfg.clusters_dir) if cfg.clusters_dir else root / "clusters",
        "pair table": Path(cfg.pair_table) if cfg.pair_table else root / TABLE_FILE,
        "sequence recommender": Path(cfg.seqrec_dir) if cfg.seqrec_dir else root / "seqrec",
    }
    for what, p in parts.items():
        if not p.exists():
            raise ConfigError(
                f"no {what} at {p}",
                "run the exploration pipeline first (`seren pipeline run exploration --local`) or pass --exploration DIR",
            )
    man_f = root / "exploration.json"
    man = json.loads(man_f.read_text()) if man_f.is_file() else {}
    return ExplorationBundle(
        root=root,
        clusters_dir=parts["clusters"],
        pair_table=parts["pair table"],
        seqrec_dir=parts["sequence recommender"],
        manifest=man_f,
        dataset=str(man["dataset"]) if man.get("dataset") else None,
        created=man.get("created"),
    )


@dataclass
class Exploration:
    """The exploration bundle loaded: what candidate generation needs."""

    item_to_cluster: dict[str, str]
    cluster_items: dict[str, set[str]]
    lookup: Any  # seren.exploration.pair_table.PairLookup
    seqrec: Any  # seren.exploration.seqrec.SeqRecModel

    @classmethod
    def load(cls, cfg: NearlineConfig) -> Exploration:
        from seren.exploration.clusters import Clusters
        from seren.exploration.lookup import cluster_members
        from seren.exploration.pair_table import PairLookup, load_pair_table
        from seren.exploration.seqrec import SeqRecModel

        b = resolve_exploration(cfg)
        cl = Clusters.load(b.clusters_dir)
        i2c = {str(k): str(v) for k, v in cl.item_to_cluster.items()}
        return cls(i2c, cluster_members(i2c), PairLookup(load_pair_table(b.pair_table)), SeqRecModel.load(b.seqrec_dir))
