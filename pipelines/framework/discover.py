"""Discovery and versioning: which folders under pipelines/ hold a pipeline, loading one with its
conventions checked, and the version (package + git short SHA) every compiled spec carries.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seren import __version__
from seren.errors import ConfigError

PIPELINES_DIR = Path(__file__).resolve().parent.parent


@dataclass
class PipelineInfo:
    """A discovered pipeline: its KFP object plus the arguments used for local runs."""

    name: str
    pipeline: Any  # kfp.dsl.graph_component.GraphComponent
    default_params: dict[str, Any] = field(default_factory=dict)
    path: Path = PIPELINES_DIR

    @property
    def kfp_name(self) -> str:
        return kfp_name(self.name)

    @property
    def description(self) -> str:
        return (self.pipeline.description or "").strip()

    def parameter_types(self) -> dict[str, str]:
        """Root input name -> IR parameter type (STRING, NUMBER_INTEGER, ...)."""
        from kfp.pipeline_spec import pipeline_spec_pb2

        enum = pipeline_spec_pb2.ParameterType.ParameterTypeEnum
        params = self.pipeline.pipeline_spec.root.input_definitions.parameters
        return {k: enum.Name(v.parameter_type) for k, v in params.items()}


# ---------------------------------------------------------------- discovery and versioning


def kfp_name(name: str) -> str:
    """Folder `serengpt_training` -> KFP name `seren-serengpt-training` (KFP allows [a-z0-9-] only)."""
    return f"seren-{name.replace('_', '-')}"


def list_pipelines() -> list[str]:
    """Names of the folders under pipelines/ that hold a pipeline.py."""
    return sorted(
        p.name
        for p in PIPELINES_DIR.iterdir()
        if p.is_dir() and p.name.isidentifier() and not p.name.startswith("_") and (p / "pipeline.py").is_file()
    )


def load(name: str) -> PipelineInfo:
    """Import `pipelines.<name>.pipeline` and check it follows the conventions."""
    known = list_pipelines()
    if name not in known:
        raise ConfigError(
            f"unknown pipeline {name!r} (known: {', '.join(known) or 'none'})", "run `seren pipeline list` to see them"
        )
    from kfp.dsl import graph_component

    module = importlib.import_module(f"pipelines.{name}.pipeline")
    pipe = getattr(module, "pipeline", None)
    if not isinstance(pipe, graph_component.GraphComponent):
        raise ConfigError(
            f"pipelines/{name}/pipeline.py defines no @dsl.pipeline named `pipeline`",
            "decorate the pipeline function with @dsl.pipeline and name it `pipeline`",
        )
    if pipe.name != kfp_name(name):
        raise ConfigError(
            f"pipelines/{name}/pipeline.py: the pipeline is named {pipe.name!r}, not {kfp_name(name)!r}",
            f'use @dsl.pipeline(name="{kfp_name(name)}")',
        )
    defaults = dict(getattr(module, "DEFAULT_PARAMS", {}))
    info = PipelineInfo(name=name, pipeline=pipe, default_params=defaults, path=PIPELINES_DIR / name)
    unknown = sorted(set(defaults) - set(info.parameter_types()))
    if unknown:
        raise ConfigError(
            f"pipelines/{name}/pipeline.py: DEFAULT_PARAMS has unknown parameter(s) {', '.join(unknown)}",
            "keep DEFAULT_PARAMS keys equal to pipeline parameters",
        )
    return info


def git_sha() -> str:
    """Short SHA of the checkout the pipelines come from ("nogit" outside git; SEREN_GIT_SHA wins, for images)."""
    env = os.environ.get("SEREN_GIT_SHA", "").strip()
    if env:
        return env[:7]
    try:
        out = subprocess.run(
            ["git", "-C", str(PIPELINES_DIR), "rev-parse", "--short=7", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "nogit"
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{7,40}", sha) else "nogit"


def pipeline_version() -> str:
    """ "<package version>+<git short sha>": what a compiled spec and a KFP pipeline version are named by."""
    return f"{__version__}+{git_sha()}"


def spec_filename(name: str, version: str | None = None) -> str:
    return f"{kfp_name(name)}-{version or pipeline_version()}.yaml"
