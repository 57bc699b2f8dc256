"""The one prompt format SerenGPT is trained, scored, exported and served with.

Labeling (SFT/preference data), the scorer, the ONNX export and the Triton tokenizer model all
call `build_prompt`, so a judgment means the same thing everywhere.
"""

from __future__ import annotations

from typing import Any

from seren.llm.relation import candidate_block, split_profile

QUESTION = "Is this item a pleasant surprise for this user? Answer Yes or No."
# The question sits in the system text, not after each candidate: packed scoring (seren.llm.packed)
# pays for the shared part once per user but for a candidate's tokens once per candidate.
SYSTEM = (
    "You judge recommendations. Answer Yes if the candidate item would be a pleasant surprise "
    "for the user: something they would enjoy but would not have found within their usual "
    "interests. Answer No if it is what they already consume or something they would not enjoy. " + QUESTION
)
YES, NO = "Yes", "No"


def user_message(profile_text: str, item_text: str, fields: dict[str, Any] | str | None = None) -> str:
    """`profile_text` may be a `relation.profile_input` envelope: only its prose enters the prompt,
    its structured fields (or explicit `fields`) give the relation line."""
    text, _ = split_profile(profile_text)
    block = candidate_block(profile_text, item_text, fields)
    return f"User profile:\n{text.strip()}\n\nCandidate item:\n{block}"


def build_prompt(tokenizer: Any, profile_text: str, item_text: str, fields: dict[str, Any] | str | None = None) -> str:
    """Chat-formatted prompt ending where the assistant's Yes/No answer starts."""
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": user_message(profile_text, item_text, fields)},
    ]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{SYSTEM}\n\n{messages[1]['content']}\nAnswer:"


def completion(label: bool, rationale: str | None = None) -> str:
    """SFT target: the answer word first (what the scorer reads), then the optional rationale."""
    ans = YES if label else NO
    return f"{ans}. {rationale.strip()}" if rationale else ans


def answer_token_ids(tokenizer: Any) -> tuple[int, int]:
    """First token ids of "Yes" and "No" as they appear right after the generation prompt."""
    ids = []
    for word in (YES, NO):
        toks = tokenizer(word, add_special_tokens=False)["input_ids"]
        if not toks:
            raise ValueError(f"tokenizer cannot encode {word!r}")
        ids.append(int(toks[0]))
    if ids[0] == ids[1]:
        raise ValueError("Yes and No share their first token; choose other answer words")
    return ids[0], ids[1]
