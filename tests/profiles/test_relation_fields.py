"""Issue 12: the prompt's relation line comes from the profile's structured fields, not its prose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seren.llm.prompts import build_prompt
from seren.llm.relation import (
    candidate_block,
    fields_from_text,
    make_fields,
    profile_input,
    relation_line,
    split_profile,
)
from seren.profiles import build_profiles

ITEMS = {
    "engaged": "X\nCategory: {eng}",
    "sibling": "X\nCategory: {top}/Brand-new",
    "outside": "X\nCategory: Zzz/Elsewhere",
}


def _reworded(text: str) -> str:
    """Another profile template: every line reworded, the facts (and so the fields) unchanged."""
    return (
        text.replace("Top interests:", "Main areas:")
        .replace("Engaged subcategories:", "Subcategories with positives:")
        .replace("(entropy", "[spread")
    )


def _cases(profiles):
    for fields_json, text in zip(profiles["relation_fields"], profiles["profile_text"], strict=True):
        fields = json.loads(fields_json)
        if not fields["engaged"]:
            continue
        eng = fields["engaged"][0][0]
        for tmpl in ITEMS.values():
            yield fields_json, text, tmpl.format(eng=eng, top=eng.split("/")[0])


def test_profiles_carry_fields_and_they_match_the_default_prose(synth, tok) -> None:
    profiles = build_profiles(synth, tok, token_budget=400)
    n = 0
    for fields_json, text, item in _cases(profiles):
        from_fields = relation_line(text, item, fields_json)
        assert from_fields.startswith("Relation: ")
        # migration check: the old prose reading gives the same sentence on the default template
        assert relation_line(text, item) == from_fields
        n += 1
    assert n >= 30


def test_a_template_change_keeps_the_relation_line(synth, tok) -> None:
    profiles = build_profiles(synth, tok, token_budget=400)
    kinds = set()
    for fields_json, text, item in _cases(profiles):
        new_text = _reworded(text)
        assert new_text != text
        before = relation_line(text, item, fields_json)
        assert relation_line(new_text, item, fields_json) == before  # structured: unchanged
        assert relation_line(profile_input(new_text, fields_json), item) == before  # via the envelope
        assert relation_line(new_text, item) == ""  # prose reading would have silently lost it
        kinds.add("engaged" if before.startswith("Relation: engaged") else "new" if " new " in before else before[-20:])
    assert len(kinds) >= 2  # engaged / new-subcategory / outside sentences all occur


def test_fields_wording_closed_form() -> None:
    f = make_fields([("Books/Poetry", 9), ("Music/Jazz", 2)], 3, [("Books", 0.7), ("Travel", 0.3)])
    assert relation_line("p", "x\nCategory: Books/Poetry", f) == "Relation: engaged 9 times before."
    assert (
        relation_line("p", "x\nCategory: Music/Rock", f)
        == "Relation: new to the user's listed interests; Music is engaged (Music/Jazz)."
    )
    assert (
        relation_line("p", "x\nCategory: Travel/Beaches", f)
        == "Relation: new to the user's listed interests; Travel is engaged (30%)."
    )
    assert (
        relation_line("p", "x\nCategory: Games/Chess", f) == "Relation: Games is outside the user's listed interests."
    )
    assert relation_line("p", "no category line", f) == ""
    legacy = fields_from_text(
        "Top interests: Books 70%, Travel 30% (entropy 0.88 bits; explores 5% outside).\n"
        "Engaged subcategories: Books/Poetry 9, Music/Jazz 2 (+3 more); 8% of positives opened a new one."
    )
    assert legacy == f


def test_envelope_puts_only_prose_in_the_prompt(tok) -> None:
    fields = make_fields([("Books/Poetry", 9)], 0, [("Books", 1.0)])
    env = profile_input("Reads poems.", fields)
    assert split_profile(env) == ("Reads poems.", fields)
    assert split_profile("Reads poems.") == ("Reads poems.", None)
    item = "A book\nCategory: Books/Poetry"
    p = build_prompt(tok, env, item)
    assert p == build_prompt(tok, "Reads poems.", item, fields)
    assert "seren_profile" not in p and "Reads poems." in p
    assert "Relation: engaged 9 times before." in p
    assert candidate_block(env, item).endswith("9 times before.")


@pytest.mark.parametrize("fields_in", ["envelope", "plain"])
def test_triton_tokenizer_model_builds_the_same_prompt(tok, tiny_model_dir: Path, fields_in: str) -> None:
    from serving.model_repository import RELATION_SOURCE, prompt_spec
    from serving.triton_models.tokenizer.model import PromptEncoder, load_candidate_block

    enc = PromptEncoder(prompt_spec(tok), tiny_model_dir / "tokenizer.json", load_candidate_block(RELATION_SOURCE))
    fields = make_fields([("Music/Jazz", 4)], 0, [("Music", 0.8)])
    text = "Listens to jazz."
    profile = profile_input(text, fields) if fields_in == "envelope" else text
    item = "Album\nCategory: Music/Blues"
    assert enc.prompt(profile, item) == build_prompt(tok, profile, item)
    assert ("Music is engaged (Music/Jazz)" in enc.prompt(profile, item)) == (fields_in == "envelope")
