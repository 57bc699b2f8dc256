"""Each pipeline's stages run from exactly one definition: `pipelines/<name>/pipeline.py`.

A stage is a component; its entry points are the library functions its body calls (the one
library call a thin component makes). A module outside components/ and pipelines/ that calls the
entry points of two or more stages of the same pipeline chains them: a second orchestration of
that DAG, with its own order, parameters and resume rules that drift from the real one. The CLI,
the demo and the benchmarks run a pipeline through `pipelines.run_local` instead; tests may call
stage functions one at a time (they are not scanned). Static (AST) check: no imports run.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("seren", "benchmarks", "serving", "monitoring", "feature_repo")
PROJECT = ("seren", "monitoring", "serving", "feature_repo")
# Plumbing a component body also calls that does not run a stage of its own.
NOT_STAGES = {
    "default_publish_dir",
    "load_dataset",
    "save_dataset",
    "get_store",
    "default_data_dir",
    "config_from_params",
}
# The orchestrations issue 15 removed, with their private resume mechanisms: none may come back.
DELETED = {
    "seren/exploration/workflow.py": ("def run_all", "_DONE_MARKER", "STAGES = "),
    "seren/serengpt/train.py": ("def train_serengpt", "def build_data"),
}
# module (relative path) -> pipeline -> why it may call several stages of that pipeline.
ALLOWED: dict[str, dict[str, str]] = {
    "seren/commands/features.py": {
        name: "`seren features apply|materialize` still write the offline sources and apply/materialize Feast "
        "outside a run: left to issue 15 item 2 (ingest/features config once)"
        for name in ("features", "serengpt_training")
    },
    "benchmarks/nearline.py": {"nearline": "times plan_window / run_shard / commit_window one by one"},
    "benchmarks/sft_cache_speed.py": {
        "serengpt_training": "builds its input table (profiles -> labels) and times only the SFT loop, no stage"
    },
    "benchmarks/feast_online.py": {
        name: "builds the Feast store whose online reads it times (a fixture, not pipeline outputs)"
        for name in ("features", "serengpt_training")
    },
    "benchmarks/recommend.py": {
        name: "builds the Feast store `seren recommend` reads in the timed loop (a fixture)"
        for name in ("features", "serengpt_training")
    },
}


def _component_entry_points(path: Path) -> dict[str, set[tuple[str, str]]]:
    """component function name -> {(module, function)} its body calls from project code."""
    out: dict[str, set[tuple[str, str]]] = {}
    for fn in ast.parse(path.read_text()).body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        imported = {
            a.asname or a.name: (n.module, a.name)
            for n in ast.walk(fn)
            if isinstance(n, ast.ImportFrom) and n.module and n.module.split(".")[0] in PROJECT
            for a in n.names
        }
        called = {n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        out[fn.name] = {imported[c] for c in called if c in imported and not c[:1].isupper() and c not in NOT_STAGES}
    return out


@cache
def pipeline_stages(name: str) -> dict[str, set[tuple[str, str]]]:
    """Stage (component) -> its entry points, for a pipeline and the pipelines it nests."""
    stages: dict[str, set[tuple[str, str]]] = {}
    for node in ast.walk(ast.parse((REPO / "pipelines" / name / "pipeline.py").read_text())):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        parts = node.module.split(".")
        if parts[0] == "components" and parts[-1] == "component":
            entries = _component_entry_points(REPO.joinpath(*parts).with_suffix(".py"))
            for a in node.names:
                stages[f"{parts[1]}.{a.name}"] = entries[a.name]
        elif parts[0] == "pipelines" and len(parts) == 3 and parts[2] == "pipeline":
            stages.update(pipeline_stages(parts[1]))
    return stages


def pipeline_names() -> list[str]:
    return sorted(p.parent.name for p in (REPO / "pipelines").glob("*/pipeline.py"))


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def calls_of(path: Path, own: str) -> set[tuple[str, str]]:
    """(module, function) of every project function module `own` (file `path`) calls: imported or its own."""
    tree = ast.parse(path.read_text())
    names: dict[str, tuple[str, str]] = {}
    modules: dict[str, str] = {}
    for n in tree.body:
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
            names[n.name] = (own, n.name)
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module:
            module = n.module
            if n.level:  # relative import
                base = (
                    own.split(".")[: -n.level]
                    if not path.name == "__init__.py"
                    else own.split(".")[: 1 - n.level or None]
                )
                module = ".".join([*base, n.module])
            for a in n.names:
                names[a.asname or a.name] = (module, a.name)
                modules[a.asname or a.name] = f"{module}.{a.name}"
        elif isinstance(n, ast.Import):
            for a in n.names:
                modules[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
    out: set[tuple[str, str]] = set()
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call):
            continue
        if isinstance(n.func, ast.Name) and n.func.id in names:
            out.add(names[n.func.id])
        elif isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name) and n.func.value.id in modules:
            out.add((modules[n.func.value.id], n.func.attr))
    return out


def _resolve(entry: tuple[str, str]) -> set[tuple[str, str]]:
    """An entry point and the names it is re-exported under by its package (`seren.x` for `seren.x.mod`)."""
    module, fn = entry
    parts = module.split(".")
    return {(".".join(parts[:i]), fn) for i in range(2, len(parts) + 1)}


def orchestrations_in(path: Path, rel: str, module: str) -> list[str]:
    calls = calls_of(path, module)
    found = []
    for name in pipeline_names():
        run = sorted(
            stage for stage, entries in pipeline_stages(name).items() if any(calls & _resolve(e) for e in entries)
        )
        if len(run) >= 2 and name not in ALLOWED.get(rel, {}):
            found.append(f"{rel} runs {len(run)} stages of pipeline {name}: {', '.join(run)}")
    return found


def orchestrations() -> list[str]:
    return [
        line
        for root in SCANNED
        for path in sorted((REPO / root).rglob("*.py"))
        for line in orchestrations_in(path, path.relative_to(REPO).as_posix(), _module_name(path))
    ]


def test_every_pipeline_has_stages_with_entry_points() -> None:
    """The scan would be vacuous if it found no stages: every pipeline has some, each calls the library."""
    for name in pipeline_names():
        stages = pipeline_stages(name)
        assert stages, name
    ex = pipeline_stages("exploration")
    assert ("seren.exploration.workflow", "run_clusters") in ex["clusters.clusters"]
    sg = pipeline_stages("serengpt_training")
    assert ("seren.serengpt.sft", "distill_artifact") in sg["distill.distill"]
    assert "ingest.ingest" in sg  # nested: features -> ingest


def test_the_scan_sees_an_orchestration(tmp_path: Path) -> None:
    """A module that chains two exploration stages is reported (the scan's own check)."""
    f = tmp_path / "probe.py"
    f.write_text(
        "from seren.exploration import workflow\n"
        "from seren.exploration.workflow import run_clusters\n"
        "def chain(d, o):\n    run_clusters(d, o)\n    workflow.run_transitions(d, o, o)\n"
    )
    assert orchestrations_in(f, "seren/probe.py", "seren.probe") == [
        "seren/probe.py runs 2 stages of pipeline exploration: clusters.clusters, transitions.transitions"
    ]
    # a stage function called from its own module counts too (how run_all chained the stages)
    own = tmp_path / "own.py"
    own.write_text(
        "def run_clusters(d, o): ...\ndef run_transitions(d, c, o): ...\ndef chain(d, o):\n    run_clusters(d, o)\n    run_transitions(d, o, o)\n"
    )
    assert orchestrations_in(own, "seren/exploration/workflow.py", "seren.exploration.workflow") == [
        "seren/exploration/workflow.py runs 2 stages of pipeline exploration: clusters.clusters, transitions.transitions"
    ]


def test_no_second_orchestration_outside_pipelines() -> None:
    assert orchestrations() == []


def test_deleted_orchestrations_stay_deleted() -> None:
    back = [
        f"{rel}: {needle!r}"
        for rel, needles in DELETED.items()
        if (REPO / rel).is_file()
        for needle in needles
        if needle in (REPO / rel).read_text()
    ]
    assert back == []


def test_allowed_exceptions_still_exist_and_say_why() -> None:
    for rel, by_pipeline in ALLOWED.items():
        assert (REPO / rel).is_file(), rel
        for name, why in by_pipeline.items():
            assert name in pipeline_names() and len(why) > 20, (rel, name)
