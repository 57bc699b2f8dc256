"""The prompt recipe of a SerenGPT model: one prompt per model, wherever it is scored.

A judgment depends on how the profile in its prompt was built (token budget, profile knobs) as
much as on the weights. Training records the recipe in the model card's `prompt` section; every
entry point (`seren serengpt score`, `seren serengpt evaluate --human`, nearline) reads it from
there through `model_recipe`, so a deployed model never gets a different prompt by accident.
A card without a recorded budget is refused; a base model without any card (zero-shot) uses
`BASE_TOKEN_BUDGET` in every entry point.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from seren.errors import ConfigError

RECIPE_KEY = "prompt"
BASE_TOKEN_BUDGET = 64  # a card-less base model (zero-shot): the training pipeline's default
# v2: question in the system text, terse relation line, item text without price and with the
# description cut to DESCRIPTION_WORDS words (shorter candidate parts for packed scoring).
PROMPT_FORMAT = "seren.llm.prompts.build_prompt/v2 (item_text + relation line)"


def prompt_recipe(token_budget: int, profile_config: Any | None = None) -> dict[str, Any]:
    """What the card records: the budget, every profile knob, and the prompt format."""
    from seren.profiles.build import ProfileConfig

    cfg = profile_config or ProfileConfig()
    return {"token_budget": int(token_budget), "profile_config": dataclasses.asdict(cfg), "format": PROMPT_FORMAT}


def recipe_from_card(card: dict[str, Any]) -> dict[str, Any] | None:
    """The recipe a card records (also the older `source.token_budget`); None when it has no budget."""
    rec = dict(card.get(RECIPE_KEY) or {})
    budget = rec.get("token_budget") or (card.get("source") or {}).get("token_budget")
    if not budget:
        return None
    rec["token_budget"] = int(budget)
    rec.setdefault("profile_config", {})
    return rec


def model_recipe(model: str | os.PathLike[str], token_budget: int | None = None) -> dict[str, Any]:
    """The recipe to score `model` with; `token_budget` overrides the recorded budget.

    A model dir with a card that records no budget, or another prompt format, raises a one-line
    ConfigError; a base model (no card) gets BASE_TOKEN_BUDGET and the default profile.
    """
    from seren.llm.card import CARD_JSON, read_model_card

    path = Path(model)
    has_card = path.is_dir() and (path / CARD_JSON).is_file()
    rec = recipe_from_card(read_model_card(path)) if has_card else None
    if rec is None and has_card and not token_budget:
        raise ConfigError(
            f"the model card of {path} records no prompt token budget, so its prompt cannot be rebuilt",
            "retrain the model with this seren version (training records it) or pass --token-budget N",
        )
    if rec is not None and rec.get("format", PROMPT_FORMAT) != PROMPT_FORMAT:
        raise ConfigError(
            f"{path} was trained on prompt format {rec['format']!r}; this seren renders {PROMPT_FORMAT!r}",
            "retrain the model with this seren version, or score it with the seren version that trained it",
        )
    if rec is None:
        rec = prompt_recipe(token_budget or BASE_TOKEN_BUDGET) | {"recorded": False}
    elif token_budget:
        rec["token_budget"] = int(token_budget)
    return rec


def profile_config(recipe: dict[str, Any]) -> Any:
    """The ProfileConfig a recipe names (unknown keys from newer versions are ignored)."""
    from seren.profiles.build import ProfileConfig

    known = {f.name for f in dataclasses.fields(ProfileConfig)}
    return ProfileConfig(**{k: v for k, v in (recipe.get("profile_config") or {}).items() if k in known})
