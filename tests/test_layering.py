"""The layers stay visible in the tree: an AST check over every module, function-level imports included.

- core (seren/data, profiles, llm, serengpt, exploration, metrics.py) and the platform
  modules (paths, durations, errors, io, progress, locks, gcs, resume) import no serving, monitoring, feature_repo,
  pipelines or components code, and nothing of the application layer (registry, nearline,
  simulation, commands, cli, recommend, demo, publish);
- KFP (`kfp`) is imported only in components/ and pipelines/; Feast (`feast`) only in feature_repo/.

A failure names each offending `module:line -> import`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The shipped code. benchmarks/ and tests/ are left out: they measure and exercise the libraries themselves
# (kfp.local fan-out overhead, Feast online reads, a live kfp.local run).
SOURCE_ROOTS = ("seren", "serving", "monitoring", "feature_repo", "components", "pipelines")

CORE = ("seren/data", "seren/profiles", "seren/llm", "seren/serengpt", "seren/exploration")
CORE_FILES = ("seren/metrics.py",)
PLATFORM_FILES = (
    "seren/__init__.py",
    "seren/paths.py",
    "seren/durations.py",
    "seren/errors.py",
    "seren/io.py",
    "seren/progress.py",
    "seren/locks.py",
    "seren/gcs.py",
    "seren/resume.py",
)
FORBIDDEN_IN_CORE = (
    "serving",
    "monitoring",
    "feature_repo",
    "pipelines",
    "components",
    "kfp",
    "feast",
    "seren.registry",
    "seren.nearline",
    "seren.simulation",
    "seren.commands",
    "seren.cli",
    "seren.recommend",
    "seren.demo",
    "seren.publish",
)


def _modules(*roots: str) -> Iterator[Path]:
    for root in roots:
        p = REPO / root
        yield from sorted(p.rglob("*.py")) if p.is_dir() else ([p] if p.exists() else [])


def _imports(path: Path, text: str | None = None) -> Iterator[tuple[int, str]]:
    """Every imported module name in `path` (module level and inside functions), absolute."""
    source = path.read_text(encoding="utf-8") if text is None else text
    tree = ast.parse(source, filename=str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the module's package
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            yield node.lineno, base
            for alias in node.names:  # `from seren import registry` imports seren.registry
                yield node.lineno, f"{base}.{alias.name}"


def _hits(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _offences(paths: Iterator[Path], forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in paths:
        for line, name in _imports(path):
            if _hits(name, forbidden):
                out.append(f"{path.relative_to(REPO)}:{line} -> {name}")
    return sorted(set(out))


def _outside(*allowed: str) -> Iterator[Path]:
    for path in _modules(*SOURCE_ROOTS):
        rel = path.relative_to(REPO).as_posix()
        if not any(rel.startswith(a + "/") for a in allowed):
            yield path


def test_core_and_platform_import_no_serving_monitoring_feast_kfp_or_application_code() -> None:
    offences = _offences(_modules(*CORE, *CORE_FILES, *PLATFORM_FILES), FORBIDDEN_IN_CORE)
    assert offences == [], "core/platform modules import outer layers:\n" + "\n".join(offences)


def test_kfp_only_in_components_and_pipelines() -> None:
    offences = _offences(_outside("components", "pipelines"), ("kfp",))
    assert offences == [], "kfp imported outside components/ and pipelines/:\n" + "\n".join(offences)


def test_feast_only_in_feature_repo() -> None:
    offences = _offences(_outside("feature_repo"), ("feast",))
    assert offences == [], "feast imported outside feature_repo/:\n" + "\n".join(offences)


def test_the_check_sees_function_level_and_relative_imports() -> None:
    # The checker itself: a function-level import and a relative one are both found, with their line.
    probe = "import os\n\ndef f():\n    from serving.triton import TritonControl\n    from ..registry import store\n"
    names = list(_imports(REPO / "seren" / "exploration" / "probe.py", probe))
    assert (4, "serving.triton") in names and (5, "seren.registry.store") in names
    assert _hits("serving.triton", FORBIDDEN_IN_CORE) and not _hits("servingx", FORBIDDEN_IN_CORE)
