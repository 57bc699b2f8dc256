"""The one duration grammar of seren: `--every`, `--window`, `--older-than`, pipeline schedules.

Four parsers with four grammars used to exist (one took '1.5h', another only '15m', one 'min' and 'w');
a user could not know which spelling a flag accepted. One grammar now: a positive number, optionally
followed by s, m (or min), h, d or w; a bare number means seconds.
"""

from __future__ import annotations

import re
from datetime import timedelta

from seren.errors import ConfigError

_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*", re.IGNORECASE)
_SECONDS = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
GRAMMAR = "a positive number with s, m, h, d or w (e.g. 90s, 15m, 1h, 1d); a bare number is seconds"
MAX_SECONDS = 36_500 * 86400.0  # 100 years: every duration stops here (longer ones overflow time arithmetic)


def parse_duration(text: str | None, *, flag: str = "duration", max_seconds: float | None = None) -> timedelta:
    """'90s', '15m', '1.5h', '2d', '1w', '900' -> a positive timedelta, or ConfigError naming `flag`.

    Every duration is at most 100 years (MAX_SECONDS); `max_seconds` sets a tighter bound for one flag.
    """
    m = _RE.fullmatch(text or "")
    seconds = float(m.group(1)) * _SECONDS[(m.group(2) or "").lower()] if m else 0.0
    if seconds <= 0:
        raise ConfigError(f"{flag} {text!r} is not a positive duration", f"use {GRAMMAR}")
    if seconds > MAX_SECONDS:
        raise ConfigError(f"{flag} {text!r} is longer than 100 years", "use e.g. 15m, 1d, 30d or 365d")
    if max_seconds is not None and seconds > max_seconds:
        raise ConfigError(
            f"{flag} {text!r} is longer than {format_duration(max_seconds)}",
            f"use at most {format_duration(max_seconds)}",
        )
    return timedelta(seconds=seconds)


def duration_seconds(text: str | None, *, flag: str = "duration", max_seconds: float | None = None) -> float:
    """Seconds of a duration in the one grammar (for sleeps and schedule intervals)."""
    return parse_duration(text, flag=flag, max_seconds=max_seconds).total_seconds()


def format_duration(seconds: float) -> str:
    """The shortest exact spelling in the grammar (86400 -> '1d')."""
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
