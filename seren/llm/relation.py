"""The candidate's relation to the profile, spelled out in the prompt.

Whether an item lies *outside* the user's interests is the half of serendipity a small model
finds hardest: it has to match the candidate's category against the profile's lists, a string
comparison that a 135M model does not learn from a few hundred labels on a CPU budget (SmolLM2's
last-token state separates the classes at ROC-AUC 0.67 without this line, 0.86-0.89 with it,
linear probe on the synthetic held-out users). So the prompt states the comparison; whether
the user would *enjoy* the item (quality, sibling interests) is still the model's call.

The line is built from the profile's structured fields (`relation_fields`, written by the profile
builder from its own columns: the engaged subcategories with counts, how many more exist, the top
categories with shares), never from the rendered prose, so rewording a profile template cannot
change it. Fields travel with the profile text through text-only interfaces (the scorer, the Triton
ensemble's PROFILE_TEXT input) as a JSON envelope (`profile_input`); `build_prompt` and the Triton
tokenizer model unwrap it (`split_profile`) and put only the prose into the prompt.
A plain profile text without fields falls back to reading the fields from the default template's
lines (`fields_from_text`), for callers that have nothing else (older data, hand-written texts).

Standard library only: the Triton tokenizer model ships this file as is.
"""

from __future__ import annotations

import json
import re
from typing import Any

ENVELOPE = "seren_profile"  # key that marks a profile input carrying structured fields

_ENGAGED = re.compile(r"Engaged subcategories: (.*?)( \(\+(\d+) more\))?; ")
_TOP = re.compile(r"Top interests: (.*?) \(entropy")
_CATEGORY = re.compile(r"^Category: (.+)$", re.MULTILINE)


def make_fields(
    engaged: list[tuple[str, int]] | None, engaged_more: int, top: list[tuple[str, float]] | None
) -> dict[str, Any]:
    """Structured relation fields: engaged [(subcategory, positives)], how many more engaged
    subcategories were not listed, top [(category, share in [0, 1])]."""
    return {
        "engaged": [[str(c), int(n)] for c, n in (engaged or [])],
        "engaged_more": int(engaged_more or 0),
        "top": [[str(c), float(s)] for c, s in (top or [])],
    }


def profile_input(profile_text: str, fields: dict[str, Any] | str | None) -> str:
    """The profile as scorers and Triton take it: plain text, or a JSON envelope with its fields."""
    if fields is None or fields == "":
        return profile_text
    if isinstance(fields, str):
        fields = json.loads(fields)
    return json.dumps({ENVELOPE: 1, "relation": fields, "text": profile_text})  # the marker key first


def split_profile(profile: str) -> tuple[str, dict[str, Any] | None]:
    """(prose, fields or None) of a profile input (an envelope or a plain text)."""
    s = profile.lstrip()
    if s.startswith(f'{{"{ENVELOPE}"'):
        try:
            obj = json.loads(s)
        except ValueError:
            return profile, None
        if isinstance(obj, dict) and obj.get(ENVELOPE):
            return str(obj.get("text", "")), obj.get("relation")
    return profile, None


def _counts(listing: str) -> list[tuple[str, str]]:
    """ "Travel/Beaches 14, Games/Puzzles 1" -> [("Travel/Beaches", "14"), ("Games/Puzzles", "1")]."""
    out = []
    for part in listing.split(", "):
        name, _, n = part.strip().rpartition(" ")
        if name:
            out.append((name, n))
    return out


def fields_from_text(profile_text: str) -> dict[str, Any] | None:
    """Fallback for a profile without fields: read them from the default template's lines."""
    engaged_m = _ENGAGED.search(profile_text)
    top_m = _TOP.search(profile_text)
    if engaged_m is None and top_m is None:
        return None
    engaged = [(c, int(n)) for c, n in _counts(engaged_m.group(1))] if engaged_m else []
    top = [(c, float(p.rstrip("%")) / 100) for c, p in _counts(top_m.group(1))] if top_m else []
    more = int(engaged_m.group(3)) if engaged_m and engaged_m.group(3) else 0
    return make_fields(engaged, more, top)


def relation_from_fields(fields: dict[str, Any] | None, category: str) -> str:
    """One sentence relating the item's category to the profile's fields; "" without fields."""
    if not fields or not category:
        return ""
    engaged = {str(c): int(n) for c, n in fields.get("engaged") or []}
    tops = {str(c): float(s) for c, s in fields.get("top") or []}
    if not engaged and not tops:
        return ""
    top = category.split("/")[0]
    # Terse on purpose: the line is paid once per candidate (20 per user in nearline), and the
    # item's own Category line right above it already names the category.
    if category in engaged:
        return f"Relation: engaged {engaged[category]} times before."
    listed = "listed " if fields.get("engaged_more") else ""
    siblings = [k for k in engaged if k.split("/")[0] == top]
    if siblings or top in tops:
        why = ", ".join(siblings) if siblings else f"{round(tops[top] * 100)}%"
        return f"Relation: new to the user's {listed}interests; {top} is engaged ({why})."
    return f"Relation: {top} is outside the user's {listed}interests."


def item_category(item_text: str) -> str:
    m = _CATEGORY.search(item_text)
    return m.group(1).strip() if m else ""


def relation_line(profile: str, item_text: str, fields: dict[str, Any] | str | None = None) -> str:
    """The relation sentence for a profile (text or envelope; explicit `fields` win) and an item."""
    text, env = split_profile(profile)
    if isinstance(fields, str):
        fields = json.loads(fields) if fields else None
    use = fields if fields is not None else env if env is not None else fields_from_text(text)
    return relation_from_fields(use, item_category(item_text))


def candidate_block(profile: str, item_text: str, fields: dict[str, Any] | str | None = None) -> str:
    """The candidate part of the prompt: the stripped item text, then its relation line."""
    item = item_text.strip()
    rel = relation_line(profile, item, fields)
    return f"{item}\n{rel}" if rel else item
