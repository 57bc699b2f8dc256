"""The environments file: where the registry lives and, per environment, its Triton repository and URL.

One small YAML file (packaged default: seren/registry/environments.yaml) so the promotion path
dev -> staging -> prod is configuration, not code. Values may use ``{home}`` (seren_home()) and
``${VAR}`` / ``${VAR:-default}``, so CI and tests point environments at their own servers without
editing the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seren.errors import ConfigError
from seren.paths import registry_dir, seren_home

DEFAULT_FILE = Path(__file__).resolve().parent / "environments.yaml"
ENV_VAR = "SEREN_ENVIRONMENTS"
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(value: str) -> str:
    """`{home}` -> seren_home(); `${VAR}` / `${VAR:-default}` -> the environment (unset and no default: "")."""
    value = value.replace("{home}", str(seren_home()))
    return _VAR_RE.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)


class Promotion(BaseModel):
    """Champion/challenger and smoke-test settings shared by all environments."""

    model_config = ConfigDict(extra="forbid")

    metric: str = "roc_auc"
    higher_is_better: bool = True
    tolerance: float = Field(0.01, ge=0)
    smoke_tolerance: float = Field(1e-3, gt=0)
    keep_triton_versions: int = Field(2, ge=1)


class Environment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    model_repository: Path
    triton_url: str = ""
    target: Literal["local", "cpu", "gpu"] = "local"
    requires: str | None = None
    verify: Literal["local-triton", "none"] = "local-triton"

    @field_validator("triton_url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip()
        if v:
            from serving.client import parse_url

            url, proto = parse_url(v)
            if proto != "http":
                raise ValueError("the model-control API is used over HTTP: give host:port or http://host:port")
            return url
        return v


class EnvironmentsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registry: str = ""
    promotion: Promotion = Promotion()
    environments: dict[str, Environment]
    source: str = ""

    @model_validator(mode="after")
    def _check(self) -> EnvironmentsConfig:
        if not self.environments:
            raise ValueError("no environments defined")
        for name, env in self.environments.items():
            env.name = name
            if env.requires is not None and env.requires not in self.environments:
                raise ValueError(f"environment {name!r} requires unknown environment {env.requires!r}")
        seen: set[str] = set()
        for name in self.environments:  # the `requires` chain must not loop
            cur: str | None = name
            seen.clear()
            while cur is not None:
                if cur in seen:
                    raise ValueError(f"environments form a cycle through {cur!r}")
                seen.add(cur)
                cur = self.environments[cur].requires
        return self

    def env(self, name: str) -> Environment:
        if name not in self.environments:
            raise ConfigError(
                f"unknown environment {name!r} (configured: {', '.join(self.environments)})",
                f"use one of them, or add it to {self.source or 'the environments file'}",
            )
        return self.environments[name]

    def order(self) -> list[str]:
        """Environments in promotion order (each after the one it requires)."""
        out: list[str] = []

        def visit(n: str) -> None:
            if n in out:
                return
            req = self.environments[n].requires
            if req:
                visit(req)
            out.append(n)

        for n in self.environments:
            visit(n)
        return out


def _expand_tree(obj: object) -> object:
    if isinstance(obj, str):
        return expand(obj)
    if isinstance(obj, dict):
        return {k: _expand_tree(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_expand_tree(v) for v in obj]
    return obj


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get(ENV_VAR) or DEFAULT_FILE)


def load_environments(path: str | os.PathLike[str] | None = None) -> EnvironmentsConfig:
    """Read and check the environments file (`path`, else $SEREN_ENVIRONMENTS, else the packaged default)."""
    p = config_path(path)
    fix = f"fix {p} (see {DEFAULT_FILE} for the format)"
    if not p.is_file():
        raise ConfigError(f"environments file {p} not found", f"pass an existing file or unset ${ENV_VAR}")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"environments file {p} is not valid YAML ({' '.join(str(exc).split())[:200]})", fix
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"environments file {p} is not a mapping", fix)
    try:
        cfg = EnvironmentsConfig.model_validate({**_expand_tree(raw), "source": str(p)})  # type: ignore[dict-item]
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"environments file {p}: {where}: {err['msg']}", fix) from None
    except ConfigError as exc:
        raise ConfigError(f"environments file {p}: {exc.problem}", fix) from None
    return cfg


def registry_uri(uri: str | None = None, config: EnvironmentsConfig | None = None) -> str:
    """The registry to use: explicit `uri`, else $SEREN_REGISTRY, else the config's, else <home>/registry."""
    if uri:
        return uri
    if os.environ.get("SEREN_REGISTRY"):
        return os.environ["SEREN_REGISTRY"]
    if config is not None and config.registry:
        return config.registry
    return str(registry_dir())
