"""Compile a pipeline to versioned IR YAML (the version stamped into the description and file name)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from pipelines.framework.discover import PipelineInfo, list_pipelines, load, pipeline_version, spec_filename
from seren.io import write_text
from seren.paths import compiled_dir


def _write_spec(info: PipelineInfo, path: Path, version: str) -> Path:
    """Compile `info` to IR YAML at `path`, stamping the version into the description."""
    from kfp.compiler import pipeline_spec_builder
    from kfp.dsl.types.type_utils import TypeCheckManager
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = pipeline_spec_pb2.PipelineSpec()
    spec.CopyFrom(info.pipeline.pipeline_spec)
    description = f"{info.description} [seren {version}]".strip()
    spec.pipeline_info.description = description
    with tempfile.TemporaryDirectory() as tmp:
        tmp_file = Path(tmp) / "spec.yaml"
        with TypeCheckManager(enable=True):
            pipeline_spec_builder.write_pipeline_spec_to_file(
                pipeline_spec=spec,
                pipeline_description=description,
                platform_spec=info.pipeline.platform_spec,
                package_path=str(tmp_file),
            )
        write_text(path, tmp_file.read_text())
    return path


def compile(name: str, out_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write `seren-<name>-<version>.yaml` into out_dir (default seren_home()/compiled)."""
    info = load(name)
    version = pipeline_version()
    out = Path(out_dir) if out_dir is not None else compiled_dir()
    return _write_spec(info, out / spec_filename(name, version), version)


def compile_all(out_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    return {name: compile(name, out_dir) for name in list_pipelines()}


def load_spec(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The YAML documents of a compiled spec (pipeline spec, then the platform spec if any)."""
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]
