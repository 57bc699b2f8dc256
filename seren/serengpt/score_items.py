"""Score arbitrary items for one user with a SerenGPT model (`seren serengpt score`): the profile
built with the model card's prompt recipe, items rendered like in training, the card's calibration
applied."""

from __future__ import annotations

import os
from typing import Any

from seren.errors import DataError
from seren.llm.calibration import apply_calibration


def score_user_items(
    model: str | os.PathLike[str],
    user: str,
    item_ids: list[str],
    data: str | os.PathLike[str] | None = None,
    token_budget: int | None = None,
    batch_size: int = 16,
    history: list[str] | None = None,
    exclude: list[str] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """Score candidates for one user from a dataset: (rows with item_id/score/title/category, profile text).

    The profile is built from the user's whole history, or only from the items in `history`,
    or without the items in `exclude`, with the prompt recipe the model was trained with (its
    card's token budget and profile knobs); items are rendered like in training (`item_text`).
    """
    from seren.data.dataset import load_dataset
    from seren.errors import ConfigError
    from seren.llm.base import resolve_base_model
    from seren.llm.card import read_model_card
    from seren.llm.scorer import SerenScorer
    from seren.profiles.build import build_profiles
    from seren.profiles.history import profile_for_history
    from seren.profiles.text import item_text, load_tokenizer
    from seren.serengpt.recipe import model_recipe, profile_config

    ids = list(dict.fromkeys(str(i).strip() for i in item_ids if str(i).strip()))
    if not ids:
        raise DataError("empty candidate list: nothing to score", "pass item ids, e.g. --items i00001,i00002")
    model_path = resolve_base_model(model)
    source = read_model_card(model_path).get("source", {})
    data = data or source.get("dataset_dir")
    if not data:
        raise ConfigError("no dataset given and the model card names none", "pass --data DIR (the dataset to read)")
    ds = load_dataset(data)
    known = set(ds.interactions["user_id"].astype(str))
    if ds.users is not None:
        known |= set(ds.users["user_id"].astype(str))
    if user not in known:
        raise DataError(f"unknown user id {user!r} in {data}", "pass a user id that appears in the dataset")
    items = ds.items.set_index(ds.items["item_id"].astype(str))
    unknown = [i for i in ids if i not in items.index]
    if unknown:
        raise DataError(
            f"{len(unknown)} unknown item id(s) (e.g. {', '.join(map(repr, unknown[:3]))}) in {data}",
            "pass item ids from the dataset's items table",
        )
    recipe = model_recipe(model_path, token_budget)
    budget, pcfg = int(recipe["token_budget"]), profile_config(recipe)
    tok = load_tokenizer(model_path)
    if history is None and not exclude:
        profile = build_profiles(ds, tok, users=[user], token_budget=budget, config=pcfg)
    else:
        profile = profile_for_history(ds, tok, user, history, exclude, token_budget=budget, config=pcfg)
    profile_text = str(profile["profile_text"].iloc[0])
    texts = item_text(items.loc[ids].reset_index(drop=True)).tolist()
    raw = SerenScorer.from_pretrained(model_path).score(profile_text, texts, batch_size=batch_size)
    from seren.llm.calibration import load_calibration

    probs = apply_calibration(load_calibration(model_path), raw)  # the card's calibrated probability
    rows = [
        {
            "item_id": i,
            "score": float(p),
            "title": str(items.at[i, "title"]),
            "category": str(items.at[i, "category"]),
        }
        for i, p in zip(ids, probs, strict=True)
    ]
    return rows, profile_text
