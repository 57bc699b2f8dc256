"""Golden specs: compile, normalise what legitimately changes between builds, diff key by key
against the committed `pipelines/<name>/golden.yaml`, and rewrite it.
"""

from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from pipelines.framework.compiler import _write_spec, load_spec
from pipelines.framework.discover import PIPELINES_DIR, load, pipeline_version
from seren.io import write_text

GOLDEN_NAME = "golden.yaml"
# "<pkg version>+<sha>" as written by pipeline_version(); the golden specs store "<version>".
VERSION_RE = re.compile(r"\b\d+(?:\.\d+)+(?:(?:a|b|rc|\.post|\.dev)\d+)?\+(?:[0-9a-f]{7,40}|nogit)\b")
VERSION_PLACEHOLDER = "<version>"


def _replace_versions(obj: Any) -> Any:
    if isinstance(obj, str):
        return VERSION_RE.sub(VERSION_PLACEHOLDER, obj)
    if isinstance(obj, dict):
        return {k: _replace_versions(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replace_versions(v) for v in obj]
    return obj


def normalise_spec(doc: dict[str, Any]) -> dict[str, Any]:
    """Blank what legitimately changes between builds (KFP's golden-test normalisation):
    the SDK version, each executor's command (it embeds the function source) and image, and the
    seren version string."""
    doc = copy.deepcopy(doc)
    if "sdkVersion" in doc:
        doc["sdkVersion"] = "<sdkVersion>"
    for executor in doc.get("deploymentSpec", {}).get("executors", {}).values():
        container = executor.get("container")
        if isinstance(container, dict):
            for key in ("command", "image"):
                if key in container:
                    container[key] = f"<{key}>"
    return _replace_versions(doc)


def spec_diff(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Key-by-key differences, each as 'a.b.c: <what>' (empty when equal)."""
    where = path or "<root>"
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[str] = []
        for key in sorted(set(expected) | set(actual), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual:
                out.append(f"{sub}: missing from the compiled spec")
            elif key not in expected:
                out.append(f"{sub}: not in the golden spec")
            else:
                out.extend(spec_diff(expected[key], actual[key], sub))
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: {len(expected)} item(s) in golden, {len(actual)} compiled"]
        return [
            d for i, (e, a) in enumerate(zip(expected, actual, strict=True)) for d in spec_diff(e, a, f"{path}[{i}]")
        ]
    if expected != actual:
        return [f"{where}: golden {expected!r} != compiled {actual!r}"]
    return []


def golden_path(name: str) -> Path:
    return PIPELINES_DIR / name / GOLDEN_NAME


def _compile_text(name: str) -> str:
    info = load(name)
    with tempfile.TemporaryDirectory() as tmp:
        return _write_spec(info, Path(tmp) / "spec.yaml", pipeline_version()).read_text()


def check_golden(name: str) -> list[str]:
    """Differences between the compiled pipeline and its committed golden spec (empty = match)."""
    gp = golden_path(name)
    if not gp.is_file():
        return [f"{gp} is missing: run `seren pipeline compile {name} --golden`"]
    compiled = [d for d in yaml.safe_load_all(_compile_text(name)) if d is not None]
    golden = load_spec(gp)
    if len(compiled) != len(golden):
        return [f"{len(golden)} YAML document(s) in golden, {len(compiled)} compiled"]
    return [d for g, c in zip(golden, compiled, strict=True) for d in spec_diff(normalise_spec(g), normalise_spec(c))]


def update_golden(name: str) -> Path:
    """Rewrite pipelines/<name>/golden.yaml (version strings replaced, so it only changes with the DAG)."""
    return write_text(golden_path(name), VERSION_RE.sub(VERSION_PLACEHOLDER, _compile_text(name)))
