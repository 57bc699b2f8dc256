"""Kubeflow Pipelines: compile, upload a versioned pipeline version, start a run or a recurring run,
with a fast reachability check, the bearer token refused over plain http to a remote host, and
kfp_server_api failures turned into one-line ServiceErrors.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import urllib.error
import urllib.request
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.framework.compiler import compile
from pipelines.framework.discover import PipelineInfo, load, pipeline_version
from pipelines.framework.params import coerce_params
from seren.durations import duration_seconds
from seren.errors import ConfigError, ServiceError, redact

_KFP_FIX = (
    "check --host (e.g. http://localhost:8080 after `kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`), "
    "or run it here with `seren pipeline run NAME --local`"
)


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
