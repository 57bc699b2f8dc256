"""The teacher label source: an LLM behind a TextBackend answers Yes/No plus a one-sentence
rationale per (user, item, snapshot); replies are parsed strictly, failures counted, and a dead
endpoint stops the run after TEACHER_PROBE calls instead of being hammered."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from seren.errors import ServiceError
from seren.llm import prompts
from seren.serengpt.labeling.sources import _SOURCE_COLUMNS, KEY

log = logging.getLogger(__name__)

TEACHER_CONFIDENCE = 0.8
TEACHER_PROBE = 3  # consecutive failures at the start that abort instead of hammering a dead endpoint

TEACHER_INSTRUCTION = "Reply with Yes or No first, then one sentence explaining why."


_ANSWER = re.compile(r"^\W*(?:(?:final\s+)?answer\s*[:\-]\s*)?\**\s*(yes|no)\b\W*(.*)$", re.IGNORECASE | re.DOTALL)
_JSON_LABEL = ("label", "answer", "serendipitous", "judgment", "judgement")
_JSON_WHY = ("rationale", "reason", "explanation", "why")


def _sentence(text: str) -> str | None:
    text = " ".join(str(text).split()).strip(" -:*\"'")
    if not text:
        return None
    text = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0][:240].strip()
    if len(text) < 3:
        return None
    return text if text[-1] in ".!?" else text + "."


def _as_label(v: Any) -> int | None:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float) and v in (0, 1):
        return int(v)
    s = str(v).strip().lower()
    return {"yes": 1, "true": 1, "1": 1, "no": 0, "false": 0, "0": 0}.get(s)


def parse_teacher(text: str) -> tuple[int, str | None] | None:
    """(label, rationale) from a teacher reply, or None when it is not a clear Yes/No.

    Accepts "Yes. Because ...", "Answer: No - ...", "**Yes**, ..." and a JSON object with a
    label/answer and rationale/reason field; anything else (hedging, both answers, prose) is None.
    """
    if not isinstance(text, str):
        return None
    t = text.strip()
    m = re.search(r"\{.*\}", t, re.DOTALL)
    if m:
        try:
            obj = json.loads(m.group(0))
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            low = {str(k).lower(): v for k, v in obj.items()}
            lab = next((_as_label(low[k]) for k in _JSON_LABEL if k in low), None)
            if lab is not None:
                why = next((low[k] for k in _JSON_WHY if k in low and low[k]), None)
                return lab, _sentence(why) if why else None
    m = _ANSWER.match(t)
    if not m:
        return None
    label = 1 if m.group(1).lower() == "yes" else 0
    rest = m.group(2)
    first_words = re.findall(r"[a-z]+", rest.lower())[:3]
    if ("yes" in first_words) or ("no" in first_words) or first_words[:1] == ["or"]:
        return None  # "Yes or no...", "yes/no" — not an answer
    rest = re.sub(r"^(?:reason|rationale|because)\s*[:\-]\s*", "", rest.strip(), flags=re.IGNORECASE)
    return label, _sentence(rest)


def teacher_prompt(profile_text: str, item_txt: str) -> str:
    return f"{prompts.SYSTEM}\n\n{prompts.user_message(profile_text, item_txt)}\n{TEACHER_INSTRUCTION}\nAnswer:"


def teacher_labels(
    pairs: pd.DataFrame,
    teacher: Any,
    max_new_tokens: int = 64,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Ask the teacher about each (user_id, item_id, as_of, profile_text, item_text) row.

    Unparseable replies are counted and skipped; errors are counted and logged. If the first
    TEACHER_PROBE calls all raise, or no call at all succeeds, a ServiceError says so.
    """
    stats: dict[str, Any] = {"teacher_calls": 0, "teacher_ok": 0, "teacher_errors": 0, "teacher_garbage": 0}
    examples: list[str] = []
    rows = list(pairs[[*KEY, "profile_text", "item_text"]].itertuples(index=False, name=None))

    def ask(row: tuple[Any, ...]) -> tuple[str, Any]:
        try:
            return "ok", teacher.complete(teacher_prompt(row[3], row[4]), max_new_tokens=max_new_tokens)
        except Exception as exc:  # any backend failure is counted, never fatal per call
            return "error", f"{type(exc).__name__}: {exc}"

    results: list[tuple[str, Any]] = []
    for row in rows[:TEACHER_PROBE]:
        results.append(ask(row))
        if on_progress:
            on_progress(len(results), len(rows))
    if results and all(r[0] == "error" for r in results) and len(results) == min(TEACHER_PROBE, len(rows)):
        raise ServiceError(
            f"teacher backend failed on all of the first {len(results)} calls ({results[0][1]})",
            "check the endpoint (SEREN_OPENAI_BASE_URL / model) or run without a teacher",
        )
    rest = rows[TEACHER_PROBE:]
    if workers > 1 and rest:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for r in pool.map(ask, rest):
                results.append(r)
                if on_progress:
                    on_progress(len(results), len(rows))
    else:
        for row in rest:
            results.append(ask(row))
            if on_progress:
                on_progress(len(results), len(rows))

    out = []
    for row, (status, value) in zip(rows, results, strict=True):
        stats["teacher_calls"] += 1
        if status == "error":
            stats["teacher_errors"] += 1
            examples.append(str(value))
            continue
        parsed = parse_teacher(value)
        if parsed is None:
            stats["teacher_garbage"] += 1
            examples.append(f"unparseable reply {str(value)[:60]!r}")
            continue
        stats["teacher_ok"] += 1
        out.append((row[0], row[1], row[2], parsed[0], TEACHER_CONFIDENCE, parsed[1], "teacher llm"))
    if stats["teacher_errors"] or stats["teacher_garbage"]:
        log.warning(
            "teacher: %d of %d calls failed (%d errors, %d unparseable); e.g. %s",
            stats["teacher_errors"] + stats["teacher_garbage"],
            stats["teacher_calls"],
            stats["teacher_errors"],
            stats["teacher_garbage"],
            examples[0],
        )
    if stats["teacher_calls"] and not stats["teacher_ok"]:
        raise ServiceError(
            f"teacher: all {stats['teacher_calls']} calls failed ({stats['teacher_errors']} errors, "
            f"{stats['teacher_garbage']} unparseable; e.g. {examples[0]})",
            "check the teacher endpoint and model, or run without a teacher",
        )
    return pd.DataFrame(out, columns=_SOURCE_COLUMNS), stats
