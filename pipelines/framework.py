"""Discover, compile, golden-check, run locally, submit and schedule seren's pipelines.

This is the only place that talks to KFP's compiler, `kfp.local` and `kfp.Client`, so every
pipeline gets the same versioning (package version + git short SHA in the spec file name and
description), the same local-run layout under `seren_home()/pipeline_runs/`, and the same one-line
errors for bad parameters or an unreachable cluster.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import os
import re
import subprocess
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from seren import __version__, progress
from seren.durations import duration_seconds
from seren.errors import ConfigError, SerenError, ServiceError, redact
from seren.io import write_json, write_text
from seren.paths import seren_home

PIPELINES_DIR = Path(__file__).resolve().parent
GOLDEN_NAME = "golden.yaml"
# "<pkg version>+<sha>" as written by pipeline_version(); the golden specs store "<version>".
VERSION_RE = re.compile(r"\b\d+(?:\.\d+)+(?:(?:a|b|rc|\.post|\.dev)\d+)?\+(?:[0-9a-f]{7,40}|nogit)\b")
VERSION_PLACEHOLDER = "<version>"
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
_KFP_FIX = (
    "check --host (e.g. http://localhost:8080 after `kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`), "
    "or run it here with `seren pipeline run NAME --local`"
)

EventCallback = Callable[[str, str, str], None]


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


# ---------------------------------------------------------------- compile and golden specs


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
    out = Path(out_dir) if out_dir is not None else seren_home() / "compiled"
    return _write_spec(info, out / spec_filename(name, version), version)


def compile_all(out_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    return {name: compile(name, out_dir) for name in list_pipelines()}


def load_spec(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The YAML documents of a compiled spec (pipeline spec, then the platform spec if any)."""
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]


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


# ---------------------------------------------------------------- parameters


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


# ---------------------------------------------------------------- local runs


class _LogTee(io.TextIOBase):
    """Sends kfp.local's stdout to the run log and reports task start/finish to a callback."""

    _start = re.compile(r"Executing task '?([^'\s]+)'?")
    _done = re.compile(r"Task '?([^'\s]+)'? finished with status (\w+)")

    def __init__(self, fh: TextIO, on_event: EventCallback | None) -> None:
        self.fh = fh
        self.on_event = on_event
        self._buf = ""
        self._task = ""

    def write(self, s: str) -> int:
        # A library imported during the run (Feast) may bind a logging handler to sys.stdout, i.e. to
        # this tee, and keep it after the run: drop its late lines instead of a "Logging error" trace.
        if self.fh.closed:
            return len(s)
        self.fh.write(s)
        if self.on_event is not None:
            self._buf += s
            *lines, self._buf = self._buf.split("\n")
            for line in lines:
                clean = _ANSI_RE.sub("", line)
                if m := self._done.search(clean):
                    self.on_event("done", m.group(1), m.group(2))
                elif m := self._start.search(clean):
                    self._task = m.group(1)
                    self.on_event("start", m.group(1), "")
                elif (event := progress.parse(clean)) is not None:
                    # a component's `seren.progress` line: kind "progress", detail "sft 12/144  loss ..  ETA .."
                    self.on_event("progress", self._task, progress.describe(event))
        return len(s)

    def flush(self) -> None:
        if not self.fh.closed:
            self.fh.flush()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "uri") and hasattr(value, "metadata"):
        return {"uri": value.uri, "path": getattr(value, "path", value.uri), "metadata": dict(value.metadata)}
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return value
    return str(value)


def _collect_tasks(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per task: output parameters and artifacts (uri + metadata, i.e. the logged metrics)."""
    tasks: dict[str, dict[str, Any]] = {}
    for f in sorted(run_dir.rglob("executor_output.json"), key=lambda f: f.stat().st_mtime):  # execution order
        data = json.loads(f.read_text())
        arts = {
            name: {"uri": a["artifacts"][0].get("uri"), "metadata": a["artifacts"][0].get("metadata", {})}
            for name, a in data.get("artifacts", {}).items()
            if a.get("artifacts")
        }
        tasks[f.parent.relative_to(run_dir).as_posix()] = {
            "parameters": data.get("parameterValues", {}),
            "artifacts": arts,
        }
    return tasks


def _failure(name: str, exc: Exception, log_path: Path) -> SerenError:
    """Turn kfp.local's RuntimeError into one line naming the task and the component's own error."""
    message = _ANSI_RE.sub("", str(exc)).strip()
    task = re.search(r"Inner task failed: '([^']+)'", message) if isinstance(exc, RuntimeError) else None
    inner = ""
    if task:
        for line in reversed(_ANSI_RE.sub("", log_path.read_text(errors="replace")).splitlines()):
            m = re.match(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$", line)
            if m:
                inner = m.group(2).strip()
                break
    problem, _, fix = inner.partition(". Fix: ")
    where = f" in task {task.group(1)!r}" if task else ""
    return SerenError(
        f"pipeline {kfp_name(name)} failed{where}: {problem or f'{type(exc).__name__}: {message}'}",
        f"{fix.rstrip('.')} (full log: {log_path})" if fix else f"see the full log {log_path}",
    )


def run_local(
    name: str,
    params: dict[str, Any] | None = None,
    *,
    pipeline_root: str | os.PathLike[str] | None = None,
    on_event: EventCallback | None = None,
) -> dict[str, Any]:
    """Run a pipeline with kfp.local in this interpreter (SubprocessRunner, no venv, no Docker).

    Arguments are DEFAULT_PARAMS overridden by `params`. Returns the pipeline's outputs and, per
    task, its output parameters and artifacts (with metrics), plus where the run's files and log
    are; the same summary is written to `<pipeline_root>/result.json`.
    """
    from kfp import local
    from kfp.local import config as local_config

    info = load(name)
    args = coerce_params(info, {**info.default_params, **(params or {})})
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S-%fZ")
    root = Path(pipeline_root) if pipeline_root is not None else seren_home() / "pipeline_runs" / name / stamp
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "run.log"
    version = pipeline_version()

    previous = getattr(local_config.LocalExecutionConfig, "instance", None)
    previous_env = os.environ.get(progress.ENV)
    os.environ[progress.ENV] = "1"  # components (subprocesses) print progress lines the tee forwards
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    try:
        with open(log_path, "w") as fh, contextlib.redirect_stdout(_LogTee(fh, on_event)), warnings.catch_warnings():
            # kfp.local warns that display names are ignored locally and that the image is "not python"
            warnings.filterwarnings("ignore", module=r"kfp\.local")
            try:
                task = info.pipeline(**args)
            except Exception as exc:  # kfp.local raises RuntimeError naming the failed task
                fh.flush()
                raise _failure(name, exc, log_path) from None
    finally:
        local_config.LocalExecutionConfig.instance = previous
        if previous_env is None:
            os.environ.pop(progress.ENV, None)
        else:
            os.environ[progress.ENV] = previous_env

    runs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    run_dir = runs[-1] if runs else root
    result = {
        "pipeline": info.kfp_name,
        "version": version,
        "params": args,
        "pipeline_root": str(root),
        "run_dir": str(run_dir),
        "log": str(log_path),
        "outputs": {k: _jsonable(v) for k, v in (task.outputs or {}).items()},
        "tasks": _collect_tasks(run_dir),
    }
    write_json(root / "result.json", result)
    return result


# ---------------------------------------------------------------- Kubeflow: submit and schedule


def _check_reachable(host: str, timeout: float) -> str:
    """Fail fast with one line instead of kfp.Client's retries (5 x 5 s) against a dead host."""
    url = host.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(f"--host {host!r} is not an http(s) URL", "pass e.g. --host http://localhost:8080")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/apis/v2beta1/healthz", timeout=timeout):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise ServiceError(
                f"Kubeflow Pipelines at {url} refused the request (HTTP {exc.code})",
                "set SEREN_KFP_TOKEN to a bearer token for the cluster, or port-forward the ml-pipeline service",
            ) from None
        raise ServiceError(
            f"{url} answered HTTP {exc.code} on /apis/v2beta1/healthz: not a Kubeflow Pipelines API", _KFP_FIX
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceError(f"Kubeflow Pipelines host {url} is unreachable ({reason})", _KFP_FIX) from None
    return url


@contextlib.contextmanager
def _kfp_errors(host: str, what: str):
    """kfp_server_api/urllib3 failures -> ServiceError naming the host and the step."""
    import kfp_server_api
    import urllib3

    try:
        yield
    except kfp_server_api.ApiException as exc:
        body = " ".join(str(exc.body or "").split())[:200]
        raise ServiceError(
            f"Kubeflow Pipelines at {host} failed to {what} (HTTP {exc.status} {exc.reason}: {body})",
            "check the KFP API server logs and your permissions",
        ) from None
    except urllib3.exceptions.HTTPError as exc:
        raise ServiceError(
            f"Kubeflow Pipelines host {host} stopped answering while trying to {what} ({type(exc).__name__})", _KFP_FIX
        ) from None


def check_token_transport(host: str, insecure: bool = False) -> str | None:
    """The bearer token ($SEREN_KFP_TOKEN) for `host`, refused over plain http to a host that is not
    loopback (anyone on the path could read it) unless `insecure`; None without a token."""
    import ipaddress
    from urllib.parse import urlparse

    token = os.environ.get("SEREN_KFP_TOKEN") or None
    u = urlparse(host.strip())
    if token is None or u.scheme != "http" or insecure:
        return token
    name = (u.hostname or "").lower()
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = name == "localhost" or name.endswith(".localhost")
    if not loopback:
        raise ConfigError(
            f"refusing to send SEREN_KFP_TOKEN over plain http to {redact(host.strip())}",
            "use an https:// --host, port-forward to localhost, or pass --insecure if the network is trusted",
        )
    return token


def _client(host: str, timeout: float, insecure: bool = False):
    import kfp

    token = check_token_transport(host, insecure)  # before any request leaves
    url = _check_reachable(host, timeout)
    with warnings.catch_warnings(), _kfp_errors(url, "connect"):
        warnings.simplefilter("ignore", FutureWarning)
        client = kfp.Client(host=url, existing_token=token)
    return url, client


def _by_name(name: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]})


def _upload(client: Any, url: str, info: PipelineInfo, spec: Path, version: str) -> dict[str, Any]:
    """Upload the spec as pipeline version "seren-<name>-<version>" (reused if it already exists)."""
    version_name = spec.stem
    with _kfp_errors(url, f"upload {info.kfp_name}"):
        pipeline_id = client.get_pipeline_id(info.kfp_name)
        if pipeline_id is None:
            pipeline_id = client.upload_pipeline(
                str(spec), pipeline_name=info.kfp_name, description=info.description
            ).pipeline_id
        found = (
            client.list_pipeline_versions(pipeline_id, page_size=1, filter=_by_name(version_name)).pipeline_versions
            or []
        )
        reused = bool(found)
        if found:
            version_id = found[0].pipeline_version_id
        else:
            version_id = client.upload_pipeline_version(
                str(spec),
                pipeline_version_name=version_name,
                pipeline_id=pipeline_id,
                description=f"{info.description} [seren {version}]",
            ).pipeline_version_id
    return {
        "pipeline": info.kfp_name,
        "pipeline_id": pipeline_id,
        "version": version,
        "version_name": version_name,
        "version_id": version_id,
        "reused_version": reused,
    }


def _prepare(
    name: str,
    host: str,
    params: dict[str, Any] | None,
    timeout: float,
    out_dir: str | os.PathLike[str] | None,
    insecure: bool = False,
) -> tuple[PipelineInfo, dict[str, Any], Path, str, Any]:
    """Check arguments, then the host, then compile: cheapest failure first."""
    info = load(name)
    args = coerce_params(info, params or {})
    url, client = _client(host, timeout, insecure)
    return info, args, compile(name, out_dir), url, client


def submit(
    name: str,
    host: str,
    experiment: str = "seren",
    params: dict[str, Any] | None = None,
    *,
    timeout: float = 5.0,
    out_dir: str | os.PathLike[str] | None = None,
    insecure: bool = False,
) -> dict[str, Any]:
    """Compile, upload as a versioned pipeline version, and start one run on a Kubeflow cluster.

    Parameters not given keep the pipeline's compiled defaults (the production values, not
    DEFAULT_PARAMS, which are sized for local runs)."""
    info, args, spec, url, client = _prepare(name, host, params, timeout, out_dir, insecure)
    with contextlib.redirect_stdout(io.StringIO()):  # kfp.Client prints links; keep --json output clean
        uploaded = _upload(client, url, info, spec, pipeline_version())
        with _kfp_errors(url, f"create experiment {experiment!r}"):
            exp = client.create_experiment(experiment)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        with _kfp_errors(url, f"start a run of {info.kfp_name}"):
            run = client.run_pipeline(
                experiment_id=exp.experiment_id,
                job_name=f"{uploaded['version_name']} {stamp}",
                params=args,
                pipeline_id=uploaded["pipeline_id"],
                version_id=uploaded["version_id"],
            )
    return {
        **uploaded,
        "host": redact(url),
        "experiment": experiment,
        "experiment_id": exp.experiment_id,
        "run_id": run.run_id,
        "url": redact(f"{url}/#/runs/details/{run.run_id}"),
        "spec": str(spec),
        "params": args,
    }


def parse_every(every: str) -> int:
    """'15m' -> 900: whole seconds of a schedule interval, in seren's one duration grammar."""
    return max(1, round(duration_seconds(every, flag="--every")))


def schedule(
    name: str,
    host: str,
    every: str = "15m",
    experiment: str = "seren",
    params: dict[str, Any] | None = None,
    *,
    timeout: float = 5.0,
    out_dir: str | os.PathLike[str] | None = None,
    insecure: bool = False,
) -> dict[str, Any]:
    """Create a Kubeflow recurring run of the versioned pipeline every `every` (no catch-up, one at a time)."""
    interval = parse_every(every)
    info, args, spec, url, client = _prepare(name, host, params, timeout, out_dir, insecure)
    with contextlib.redirect_stdout(io.StringIO()):
        uploaded = _upload(client, url, info, spec, pipeline_version())
        with _kfp_errors(url, f"create experiment {experiment!r}"):
            exp = client.create_experiment(experiment)
        with _kfp_errors(url, f"schedule {info.kfp_name}"):
            job = client.create_recurring_run(
                experiment_id=exp.experiment_id,
                job_name=f"{info.kfp_name} every {every.strip()}",
                description=f"{uploaded['version_name']} every {interval} s",
                interval_second=interval,
                max_concurrency=1,
                no_catchup=True,
                params=args,
                pipeline_id=uploaded["pipeline_id"],
                version_id=uploaded["version_id"],
            )
    return {
        **uploaded,
        "host": redact(url),
        "experiment": experiment,
        "experiment_id": exp.experiment_id,
        "recurring_run_id": job.recurring_run_id,
        "every": every.strip(),
        "interval_seconds": interval,
        "spec": str(spec),
        "params": args,
    }
