"""seren.durations: the one duration grammar every flag (--every, --window, --max-age, schedules) uses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from seren.durations import MAX_SECONDS, duration_seconds, format_duration, parse_duration
from seren.errors import ConfigError


def test_closed_form_values() -> None:
    cases = {
        "900": 900,
        "90s": 90,
        "2sec": 2,
        "15m": 900,
        "15min": 900,
        "1.5h": 5400,
        "12H": 43200,
        "2d": 172800,
        "1w": 604800,
        " 5 m ": 300,
        "0.5s": 0.5,
    }
    assert {text: duration_seconds(text) for text in cases} == cases
    assert parse_duration("1d") == timedelta(days=1)


@pytest.mark.parametrize("bad", ["", None, "0", "0h", "-5m", "m", "1y", "15 minutes", "soon", "1e3s", "1h30m"])
def test_bad_input_is_one_line_config_error_naming_the_flag(bad: str | None) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_duration(bad, flag="--every")
    msg = str(exc.value)
    assert msg.startswith(f"--every {bad!r} is not a positive duration. Fix: use a positive number with s, m, h")
    assert "\n" not in msg


def test_bounds() -> None:
    with pytest.raises(ConfigError, match=r"^--every '31d' is longer than 30d\. Fix: use at most 30d$"):
        parse_duration("31d", flag="--every", max_seconds=30 * 86400)
    assert duration_seconds("30d", max_seconds=30 * 86400) == 30 * 86400
    # Beyond 100 years every duration fails as a ConfigError, not an OverflowError from timedelta.
    assert duration_seconds("36500d") == MAX_SECONDS
    with pytest.raises(ConfigError, match="'99999999999999d' is longer than 100 years"):
        parse_duration("99999999999999d", flag="--max-age")


def test_format_duration_is_the_shortest_exact_spelling_and_parses_back() -> None:
    assert [format_duration(s) for s in (604800, 86400, 7200, 5400, 120, 90, 0.5)] == [
        "1w",
        "1d",
        "2h",
        "90m",
        "2m",
        "90s",
        "0.5s",
    ]
    for s in (604800, 86400, 7200, 5400, 90, 0.5):
        assert duration_seconds(format_duration(s)) == s
