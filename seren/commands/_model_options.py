"""CLI options generated from a stage's pydantic config model, so a command never re-declares them.

    @app.command("run")
    @model_options(NearlineConfig)
    def run(settings: dict[str, Any], every: str = typer.Option(None, "--every"), ...) -> None:
        cfg = NearlineConfig.model_validate(settings)

Every model field becomes one option: its flags come from the field's `json_schema_extra["cli"]`
(default `--field-name`), its help from the description, `hidden` from `json_schema_extra`;
validation stays in the model (one-line ConfigError), not in typer.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

import typer
from pydantic import BaseModel


def option_flags(model: type[BaseModel]) -> dict[str, list[str]]:
    """field -> its CLI flags (what `model_options` generates; tests compare against it)."""
    out = {}
    for name, f in model.model_fields.items():
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        out[name] = list(extra.get("cli") or [f"--{name.replace('_', '-')}"])  # type: ignore[arg-type]
    return out


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    """The field's inclusive bounds as typer min/max, so the option is range-checked at parse time
    with the flag's name (the model checks every constraint again, also for components)."""
    out: dict[str, Any] = {}
    for m in metadata:
        if getattr(m, "ge", None) is not None:
            out["min"] = m.ge
        if getattr(m, "le", None) is not None:
            out["max"] = m.le
    return out


def model_options(model: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command whose first parameter receives the model's fields as a dict."""
    flags = option_flags(model)

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(fn)
        own = list(inspect.signature(fn).parameters.values())[1:]  # after `settings`
        params = []
        for name, f in model.model_fields.items():
            extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
            opt = typer.Option(
                f.default,
                *flags[name],
                help=f.description,
                hidden=bool(extra.get("hidden")),
                show_default=f.default not in ("", None),
                **_bounds(f.metadata),
            )
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=f.annotation))
        params += [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, p.annotation)) for p in own
        ]

        @functools.wraps(fn)
        def wrapper(**kw: Any) -> Any:
            settings = {k: kw.pop(k) for k in model.model_fields}
            return fn(settings, **kw)

        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return deco
