"""The candidate's relation line: parsed from the prompt's own texts, exactly the three cases."""

from __future__ import annotations

from seren.llm import prompts
from seren.llm.relation import candidate_block, relation_line

PROFILE = (
    "Top interests: Books 80%, Music 20% (entropy 0.72 bits; explores 10% outside).\n"
    "Engaged subcategories: Books/Sci-Fi 12, Music/Jazz 3; 10% of positives opened a new one."
)


def item(category: str) -> str:
    return f"Quiet Verse\nCategory: {category}\nPrice: 12.00\nA beloved collection."


def test_already_engaged_subcategory() -> None:
    assert relation_line(PROFILE, item("Music/Jazz")) == "Relation: engaged 3 times before."


def test_new_subcategory_of_an_engaged_category_names_the_siblings() -> None:
    line = relation_line(PROFILE, item("Books/Poetry"))
    assert line == "Relation: new to the user's interests; Books is engaged (Books/Sci-Fi)."


def test_unrelated_category_is_outside() -> None:
    assert relation_line(PROFILE, item("Tech/AI")) == "Relation: Tech is outside the user's interests."


def test_top_interest_without_listed_subcategory() -> None:
    profile = "Top interests: Travel 100% (entropy 0.00 bits; explores 0% outside)."
    assert relation_line(profile, item("Travel/Cities")).endswith("Travel is engaged (100%).")


def test_hidden_subcategories_make_the_claim_about_listed_ones_only() -> None:
    profile = "Engaged subcategories: Books/Sci-Fi 12 (+2 more); 5% of positives opened a new one."
    assert relation_line(profile, item("Tech/AI")) == "Relation: Tech is outside the user's listed interests."


def test_no_line_without_a_category_or_a_parsable_profile() -> None:
    assert relation_line(PROFILE, "A cookbook of coastal soups") == ""
    assert relation_line("Reads science fiction; listens to jazz.", item("Books/Poetry")) == ""
    assert candidate_block("free text", "  A cookbook  ") == "A cookbook"


def test_prompt_places_the_line_after_the_item() -> None:
    msg = prompts.user_message(PROFILE, item("Tech/AI"))
    assert msg.endswith("A beloved collection.\nRelation: Tech is outside the user's interests.")
