"""Pipeline arguments: names and types checked against the compiled IR, CLI `k=v` strings coerced."""

from __future__ import annotations

import json
from typing import Any

from pipelines.framework.discover import PipelineInfo, load
from seren.errors import ConfigError

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def _coerce(key: str, value: Any, ptype: str) -> Any:
    """Convert a CLI string (or check a Python value) against the IR parameter type."""
    expected = {
        "NUMBER_INTEGER": "an integer",
        "NUMBER_DOUBLE": "a number",
        "BOOLEAN": "true or false",
        "LIST": "a JSON list",
        "STRUCT": "a JSON object",
    }.get(ptype, "a string")
    fail = ConfigError(f"parameter {key}={value!r} is not {expected}", f"pass --param {key}=<{expected}>")
    if ptype == "STRING":
        return value if isinstance(value, str) else str(value)
    if ptype == "BOOLEAN":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise fail
    if ptype == "NUMBER_INTEGER":
        if isinstance(value, bool):
            raise fail
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise fail from None
    if ptype == "NUMBER_DOUBLE":
        if isinstance(value, bool):
            raise fail
        try:
            return float(value)
        except (TypeError, ValueError):
            raise fail from None
    if ptype in ("LIST", "STRUCT"):
        want = list if ptype == "LIST" else dict
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise fail from None
        if not isinstance(value, want):
            raise fail
        return value
    return value


def coerce_params(info: PipelineInfo, params: dict[str, Any]) -> dict[str, Any]:
    """Check names and types of pipeline arguments; one ConfigError for the first bad one."""
    types = info.parameter_types()
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key not in types:
            raise ConfigError(
                f"pipeline {info.name!r} has no parameter {key!r} (parameters: {', '.join(sorted(types)) or 'none'})",
                f"see `seren pipeline list` or pipelines/{info.name}/pipeline.py",
            )
        out[key] = _coerce(key, value, types[key])
    return out


def parse_params(name: str, items: list[str] | None) -> dict[str, Any]:
    """`["k=v", ...]` from the command line -> typed arguments for pipeline `name`."""
    info = load(name)
    raw: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {item!r} is not KEY=VALUE", "write it as --param n_users=200")
        raw[key.strip()] = value
    return coerce_params(info, raw)
