"""Store targets without importing Feast: which targets exist, their rendered
feature_store.yaml, and a fast Redis reachability check.

Targets are YAML templates in ``feature_repo/targets/``; variables are filled from the
environment and the data dir (default ``$SEREN_HOME/features``), so every path points outside
the repo.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any

import yaml

from seren.errors import ConfigError, ServiceError
from seren.paths import features_dir

TARGETS_DIR = Path(__file__).resolve().parent / "targets"
DEFAULT_TARGET = "local"

# template variable -> (environment variable, default or None when required)
_VARS: dict[str, tuple[str, str | None]] = {
    "REDIS": ("SEREN_REDIS_URL", "localhost:6379"),
    "GCP_PROJECT": ("SEREN_GCP_PROJECT", None),
    "GCS_BUCKET": ("SEREN_GCS_BUCKET", None),
    "BQ_DATASET": ("SEREN_BQ_DATASET", "seren_features"),
    "BQ_LOCATION": ("SEREN_BQ_LOCATION", "US"),
}


def available_targets() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.yaml"))


def resolve_target(target: str | None = None) -> str:
    """An explicit target wins; else SEREN_FEAST_TARGET; else local."""
    name = target or os.environ.get("SEREN_FEAST_TARGET") or DEFAULT_TARGET
    if name not in available_targets():
        raise ConfigError(
            f"unknown feature store target {name!r}",
            f"use one of {', '.join(available_targets())} (--target or SEREN_FEAST_TARGET)",
        )
    return name


def default_data_dir() -> Path:
    return features_dir()


def render_config(target: str | None = None, data_dir: Path | None = None) -> dict[str, Any]:
    """The target's feature_store.yaml as a dict, variables filled from the environment."""
    name = resolve_target(target)
    data_dir = Path(data_dir or default_data_dir()).resolve()
    values = {"DATA_DIR": str(data_dir)}
    for var, (env, default) in _VARS.items():
        val = os.environ.get(env) or default
        if val is not None:
            values[var] = _redis_conn(val) if var == "REDIS" else val
    lines = (TARGETS_DIR / f"{name}.yaml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    try:
        rendered = string.Template(text).substitute(values)
    except KeyError as exc:
        env = _VARS.get(exc.args[0], (exc.args[0], None))[0]
        raise ConfigError(f"feature store target {name!r} needs {env}", f"export {env}=...") from None
    return yaml.safe_load(rendered)


REDIS_PASSWORD_ENV = "SEREN_REDIS_PASSWORD"
# What the written feature_store.yaml holds instead of the password: Feast's own loader
# (`feast -c DIR`) expands ${VAR} from the environment at use (os.path.expandvars).
REDIS_PASSWORD_REF = "${" + REDIS_PASSWORD_ENV + "}"


def _redis_conn(url: str) -> str:
    """Accept 'host:port[,opts]' (Feast's form) or 'redis://[:password@]host:port[/db]'; a password
    in $SEREN_REDIS_PASSWORD is added (the URL's own wins)."""
    if url.startswith(("redis://", "rediss://")):
        from urllib.parse import unquote, urlparse

        u = urlparse(url)
        parts = [f"{u.hostname or 'localhost'}:{u.port or 6379}"]
        if u.path.strip("/"):
            parts.append(f"db={u.path.strip('/')}")
        if u.password:
            parts.append(f"password={unquote(u.password)}")
        if url.startswith("rediss://"):
            parts.append("ssl=true")
        url = ",".join(parts)
    pw = os.environ.get(REDIS_PASSWORD_ENV)
    if pw and not any(o.startswith("password=") for o in url.split(",")[1:]):
        url += f",password={pw}"
    return url


def without_secrets(raw: dict[str, Any]) -> dict[str, Any]:
    """The rendered config as it may be written to disk: a Redis password becomes
    ${SEREN_REDIS_PASSWORD}, read from the environment when Feast loads the file."""
    online = raw.get("online_store") or {}
    conn = online.get("connection_string")
    if online.get("type") != "redis" or not isinstance(conn, str):
        return raw
    head, *opts = conn.split(",")
    opts = [f"password={REDIS_PASSWORD_REF}" if o.startswith("password=") else o for o in opts]
    return {**raw, "online_store": {**online, "connection_string": ",".join([head, *opts])}}


def redis_endpoint(conn: str) -> tuple[str, int, dict[str, str]]:
    head, *opts = conn.split(",")
    host, _, port = head.rpartition(":")
    try:
        return host or "localhost", int(port), dict(o.split("=", 1) for o in opts if "=" in o)
    except ValueError:
        raise ConfigError(f"bad Redis address {conn!r}", "set SEREN_REDIS_URL=host:port") from None


def check_redis(conn: str) -> None:
    """Fail fast with one line instead of a redis-py traceback deep inside Feast."""
    import redis

    host, port, opts = redis_endpoint(conn)
    client = redis.Redis(
        host=host,
        port=port,
        db=int(opts.get("db", 0)),
        password=opts.get("password"),
        ssl=opts.get("ssl", "false").lower() == "true",
        socket_connect_timeout=2,
        socket_timeout=2,
        retry=None,  # one attempt: redis-py's default retries with backoff take ~5 s to say no
    )
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise redis_error(conn, exc) from None
    finally:
        client.close()


def redis_error(conn: str, exc: BaseException) -> ServiceError:
    host, port, _ = redis_endpoint(conn)
    return ServiceError(
        f"Redis online store at {host}:{port} is unreachable ({type(exc).__name__})",
        f"start it (redis-server --port {port}) or set SEREN_REDIS_URL=host:port",
    )


def check_target(target: str | None = None, data_dir: Path | None = None) -> dict[str, Any]:
    """Render the target and, for Redis, check it answers: all bad-config errors, no Feast."""
    raw = render_config(target, data_dir)
    online = raw.get("online_store") or {}
    if online.get("type") == "redis":
        check_redis(online["connection_string"])
    return raw
