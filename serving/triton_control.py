"""The project's one client of Triton's model-control API, and the control key it sends.

Model control (load, unload, repository index) is a restricted API: the server started by
serving.triton.TritonServer accepts it only with the key in the `seren-control-key` header
(gRPC: `triton-grpc-protocol-seren-control-key` metadata), taken from $SEREN_TRITON_CONTROL_KEY.
serving.client.SerenClient and seren.registry.triton_deploy go through `TritonControl`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seren.errors import ServiceError

CONTROL_KEY_ENV = "SEREN_TRITON_CONTROL_KEY"
CONTROL_HEADER = "seren-control-key"  # lowercase: gRPC metadata keys must be


def control_key(key: str | None = None) -> str | None:
    """The key for Triton's restricted APIs: given, else $SEREN_TRITON_CONTROL_KEY, else None."""
    return key or os.environ.get(CONTROL_KEY_ENV) or None


def control_headers(key: str | None = None, protocol: str = "http") -> dict[str, str]:
    """Headers (HTTP) / metadata (gRPC: Triton expects the `triton-grpc-protocol-` prefix) that
    unlock the restricted APIs; empty without a key."""
    k = control_key(key)
    if not k:
        return {}
    return {(CONTROL_HEADER if protocol == "http" else f"triton-grpc-protocol-{CONTROL_HEADER}"): k}


class TritonControl:
    """The project's one client of Triton's model-control API: load, unload, repository index,
    readiness (HTTP by default; `protocol="grpc"` for a gRPC endpoint). Sends the control key (`key`,
    else $SEREN_TRITON_CONTROL_KEY); failures are one-line `error` exceptions (ServiceError; promotion
    uses its DeploymentError). serving.client.SerenClient and seren.registry.triton_deploy use it."""

    error: type[ServiceError] = ServiceError
    failed = "could not"  # wording of a refused request (promotion says "failed to")

    def __init__(
        self,
        url: str,
        key: str | None = None,
        timeout: float = 300.0,
        log_file: Path | str | None = None,
        protocol: str = "http",
    ) -> None:
        self.url = url.split("://", 1)[-1].rstrip("/")
        self.timeout = timeout
        self.protocol = protocol
        self._key = key
        self.log_file = log_file

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}({self.url!r})"

    @contextlib.contextmanager
    def _client(self):  # noqa: ANN202 - tritonclient type
        """A short-lived client; closed after use, because Triton's shutdown waits for open connections."""
        if self.protocol == "grpc":
            import tritonclient.grpc as grpcclient

            client = grpcclient.InferenceServerClient(self.url)
        else:
            import tritonclient.http as httpclient

            client = httpclient.InferenceServerClient(self.url, connection_timeout=5.0, network_timeout=self.timeout)
        try:
            yield client
        finally:
            client.close()

    def _fix(self) -> str:
        return f"see {self.log_file}" if self.log_file else "see the Triton log"

    def _call(self, what: str, fn: Callable[[Any, dict[str, str]], Any]) -> Any:
        from tritonclient.utils import InferenceServerException

        headers = control_headers(self._key, protocol=self.protocol)
        try:
            with self._client() as c:
                return fn(c, headers)
        except InferenceServerException as exc:
            msg = " ".join(str(exc.message()).split())[:300]
            if str(exc.status()) in ("403", "401") or "restricted" in msg.lower():
                raise self.error(
                    f"Triton at {self.url} refused to {what}: model control is restricted and "
                    f"{'the control key was wrong' if headers else 'no control key was sent'}",
                    f"start the server with {CONTROL_KEY_ENV}=<secret> in its environment and export the same "
                    "value here (a server started without it has a random key only its launcher holds)",
                ) from None
            raise self.error(f"Triton at {self.url} {self.failed} {what}: {msg}", self._fix()) from None
        except Exception as exc:  # connection refused / reset (gevent, socket errors)
            raise self.error(
                f"Triton at {self.url} unreachable while trying to {what} ({type(exc).__name__}: {exc})",
                "start the environment's Triton (seren serve REPO) or fix its triton_url",
            ) from None

    def server_ready(self) -> bool:
        try:
            return bool(self._call("check readiness", lambda c, h: c.is_server_ready()))
        except ServiceError:
            return False

    def load(self, name: str) -> None:
        self._call(f"load model {name!r}", lambda c, h: c.load_model(name, headers=h))

    def unload(self, name: str, unload_dependents: bool = True) -> None:
        self._call(
            f"unload model {name!r}", lambda c, h: c.unload_model(name, headers=h, unload_dependents=unload_dependents)
        )

    def ready(self, name: str, version: str = "") -> bool:
        return bool(self._call(f"check {name}", lambda c, h: c.is_model_ready(name, version)))

    def has_key(self) -> bool:
        """Whether a control key will be sent (the restricted APIs refuse requests without one)."""
        return bool(control_headers(self._key, protocol=self.protocol))

    def repository_index(self) -> list[dict]:
        """[{'name', 'version', 'state', ...}] for every model in the repository (a restricted API)."""
        index = self._call("read the repository index", lambda c, h: c.get_model_repository_index(headers=h))
        if self.protocol == "grpc":
            from google.protobuf.json_format import MessageToDict

            return [MessageToDict(m, preserving_proto_field_name=True) for m in index.models]
        return list(index)

    def loaded_versions(self, name: str) -> list[int]:
        """Versions of `name` the server reports READY (from the repository index)."""
        return sorted(
            int(m["version"])
            for m in self.repository_index()
            if m.get("name") == name and m.get("state") == "READY" and str(m.get("version", "")).isdigit()
        )
