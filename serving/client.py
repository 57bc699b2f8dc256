"""Query the `serengpt` ensemble on Triton over HTTP or gRPC.

Transient failures (connection refused/reset, UNAVAILABLE, timeouts) are retried a bounded
number of times with exponential backoff (tenacity); everything else fails at once. Every
failure reaches the caller as a one-line ServiceError naming the server, the model and a fix:
unreachable server, unknown or unready model, a model whose inputs/outputs are not the
SerenGPT interface, or a response of the wrong shape.

Scores are calibrated exactly once: a repository built from a current export serves the calibrated
probability itself (its ensemble config says `calibrated: "true"` and which map), so the client
passes it through and only checks that the map it was given is that one; an older repository
(no flag) serves raw P(Yes) and the client applies its `calibration` map after the call.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from seren.errors import ConfigError, DataError, ServiceError

T = TypeVar("T")
Protocol = Literal["http", "grpc"]
DEFAULT_MODEL = "serengpt"
INPUTS = ("PROFILE_TEXT", "ITEM_TEXT")
OUTPUT = "SCORE"
_TRANSIENT_GRPC = {"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.RESOURCE_EXHAUSTED"}
SERVE_FIX = "start it with `seren serve` (or check --url)"


def parse_url(url: str, protocol: Protocol | None = None) -> tuple[str, Protocol]:
    """'host:port', 'http://host:port' or 'grpc://host:port' -> (host:port, protocol)."""
    url = url.strip().rstrip("/")
    if "@" in url.split("/", 3)[2 if "://" in url else 0]:
        raise ConfigError(
            "the Triton URL carries credentials (user:password@ before the host); Triton takes none in the URL",
            "pass host:port only (model control uses SEREN_TRITON_CONTROL_KEY)",
        )
    scheme = None
    if "://" in url:
        scheme, url = url.split("://", 1)
        if scheme not in ("http", "grpc"):
            raise ConfigError(
                f"unsupported URL scheme {scheme!r} in {url!r}", "use http://host:port or grpc://host:port"
            )
    proto = protocol or scheme or "http"
    if proto not in ("http", "grpc"):
        raise ConfigError(f"unknown protocol {proto!r}", "use --protocol http or grpc")
    host, _, port = url.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"Triton URL {url!r} has no host:port", "pass e.g. --url 127.0.0.1:8000")
    return url, proto  # type: ignore[return-value]


def _is_transient(exc: BaseException) -> bool:
    from tritonclient.utils import InferenceServerException

    if isinstance(exc, ConnectionError | TimeoutError | socket.timeout):
        return True
    # geventhttpclient: the server closed the connection mid-request (Triton restarting or killed)
    if type(exc).__name__ in ("HTTPConnectionClosed", "RemoteDisconnected"):
        return True
    if type(exc).__name__ == "Timeout":  # gevent.timeout.Timeout from the HTTP client
        return True
    if isinstance(exc, InferenceServerException):
        status = str(exc.status() or "")
        if "restricted" in str(exc.message() or "").lower():
            return False  # a refused control key (gRPC answers UNAVAILABLE) is not an outage
        return status in _TRANSIENT_GRPC or status == "503"
    return False


class SerenClient:
    """`SerenClient("127.0.0.1:8000").score(profile_texts, item_texts) -> np.ndarray[float32]`."""

    def __init__(
        self,
        url: str,
        protocol: Protocol | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        model: str = DEFAULT_MODEL,
        backoff: float = 0.2,
        calibration: dict | None = None,
    ) -> None:
        self.url, self.protocol = parse_url(url, protocol)
        # The model's calibration map (seren.llm.calibration, from its card). A served graph that
        # already applies it (ensemble config `calibrated: "true"`) gets nothing more; an older graph
        # gets it applied here after the Triton call. Either way callers get the calibrated score.
        self.calibration = calibration
        if timeout <= 0 or retries < 0:
            raise ConfigError(
                f"timeout must be > 0 and retries >= 0 (got {timeout}, {retries})", "pass sensible --timeout/--retries"
            )
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.model = model
        self.backoff = backoff
        self._client: Any = None
        self._config: dict | None = None

    # -- plumbing --------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            if self.protocol == "http":
                import tritonclient.http as httpclient

                self._client = httpclient.InferenceServerClient(
                    self.url, connection_timeout=min(self.timeout, 10.0), network_timeout=self.timeout
                )
            else:
                import tritonclient.grpc as grpcclient

                self._client = grpcclient.InferenceServerClient(self.url)
        return self._client

    def close(self) -> None:
        """Close the connection (Triton's shutdown waits for open HTTP connections)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> SerenClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Callable[[], T], what: str) -> T:
        """Run fn with bounded retries on transient errors; map the rest to one-line errors."""
        from tritonclient.utils import InferenceServerException

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=self.backoff, max=5.0),
            retry=retry_if_exception(_is_transient),
            reraise=True,
        )
        try:
            return retrying(fn)
        except InferenceServerException as exc:
            msg = " ".join(str(exc.message() or exc).split())
            if _is_transient(exc):
                raise ServiceError(
                    f"Triton at {self.url} ({self.protocol}) is unreachable or timed out after {self.retries + 1} attempts: {msg}",
                    SERVE_FIX,
                ) from None
            if "unknown model" in msg.lower() or "not found" in msg.lower():
                raise ServiceError(
                    f"model {self.model!r} is unknown to Triton at {self.url}: {msg}",
                    "load it (seren serve --model serengpt) or check --model",
                ) from None
            if "not ready" in msg.lower() or "unavailable" in msg.lower():
                raise ServiceError(
                    f"model {self.model!r} is not ready on Triton at {self.url}: {msg}",
                    "wait for it to load or reload it",
                ) from None
            if "unexpected inference" in msg.lower():
                raise ServiceError(
                    f"model {self.model!r} at {self.url} is not the SerenGPT interface: {msg}",
                    "point --model at the serengpt ensemble",
                ) from None
            if "shape" in msg.lower() or "dims" in msg.lower():
                raise ServiceError(
                    f"shape mismatch calling {self.model!r} at {self.url}: {msg}",
                    "use a client and model repository built from the same seren version",
                ) from None
            raise ServiceError(f"{what} failed on Triton at {self.url}: {msg}", "see the Triton server log") from None
        except Exception as exc:
            if _is_transient(exc) or isinstance(exc, OSError):
                reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}".rstrip(": ")
                raise ServiceError(
                    f"Triton at {self.url} ({self.protocol}) is unreachable after {self.retries + 1} attempts: {reason}",
                    SERVE_FIX,
                ) from None
            raise

    # -- health ------------------------------------------------------------------------------------
    def server_ready(self) -> bool:
        try:
            return bool(self._call(self.client.is_server_ready, "readiness check"))
        except ServiceError:
            return False

    def check_model(self) -> dict:
        """Fail with a one-line reason unless the model is loaded, ready and has the SerenGPT interface."""
        ready = self._call(lambda: self.client.is_model_ready(self.model), "model readiness check")
        if not ready:
            from serving.triton_control import CONTROL_KEY_ENV, TritonControl

            control = TritonControl(self.url, timeout=self.timeout, protocol=self.protocol)
            if not control.has_key():  # the index is a restricted (model-control) API: without the key, say both
                raise ServiceError(
                    f"model {self.model!r} is not ready or unknown to Triton at {self.url}",
                    f"load it (seren serve --model {self.model}) or check --model; export {CONTROL_KEY_ENV} "
                    "to see the repository state",
                )
            names = {m.get("name"): m.get("state", "") for m in control.repository_index()}
            if self.model not in names:
                raise ServiceError(
                    f"model {self.model!r} is unknown to Triton at {self.url} (has: {', '.join(sorted(names)) or 'none'})",
                    "check --model, or build the repository with serengpt in it",
                )
            raise ServiceError(
                f"model {self.model!r} is not ready on Triton at {self.url} (state: {names[self.model] or 'UNLOADED'})",
                f"load it: seren serve --model {self.model}",
            )
        meta = self._call(lambda: self.client.get_model_metadata(self.model), "model metadata")
        if self.protocol == "grpc":
            from google.protobuf.json_format import MessageToDict

            meta = MessageToDict(meta, preserving_proto_field_name=True)
        ins = {t["name"] for t in meta.get("inputs", [])}
        outs = {t["name"] for t in meta.get("outputs", [])}
        if not set(INPUTS) <= ins or OUTPUT not in outs:
            raise ServiceError(
                f"model {self.model!r} at {self.url} has inputs {sorted(ins)} / outputs {sorted(outs)}, not {list(INPUTS)} -> {OUTPUT}",
                "point --model at the serengpt ensemble",
            )
        return meta

    def model_config(self) -> dict:
        """The served model's config as a dict (fetched once): max_batch_size and parameters."""
        if self._config is None:
            cfg = self._call(lambda: self.client.get_model_config(self.model), "model config")
            if self.protocol == "grpc":
                from google.protobuf.json_format import MessageToDict

                cfg = MessageToDict(cfg.config, preserving_proto_field_name=True)
            self._config = dict(cfg)
        return self._config

    def max_batch_size(self) -> int:
        return int(self.model_config().get("max_batch_size", 0)) or 1

    def served_calibration(self) -> dict:
        """{"calibrated": bool, "calibration_sha": str | None} of the served scorer graph (model config).

        calibrated False for a repository built before the map was folded into the graph."""
        params = self.model_config().get("parameters") or {}

        def get(key: str) -> str | None:
            v = params.get(key)
            return v.get("string_value") if isinstance(v, dict) else None

        return {"calibrated": get("calibrated") == "true", "calibration_sha": get("calibration_sha")}

    def calibration_to_apply(self) -> dict | None:
        """The map this client still applies to served scores (None: the server already applied it)."""
        from seren.llm.calibration import map_left_to_apply

        if self.calibration is None:
            return None
        served = self.served_calibration()
        return map_left_to_apply(self.calibration, served["calibrated"], served["calibration_sha"])

    # -- scoring -------------------------------------------------------------------------------------
    def _infer(self, profiles: Sequence[str], items: Sequence[str]) -> np.ndarray:
        mod: Any
        if self.protocol == "http":
            import tritonclient.http as mod
        else:
            import tritonclient.grpc as mod
        n = len(items)
        tensors = []
        for name, texts in zip(INPUTS, (profiles, items), strict=True):
            arr = np.array([[t.encode("utf-8")] for t in texts], dtype=np.object_)
            inp = mod.InferInput(name, [n, 1], "BYTES")
            inp.set_data_from_numpy(arr)
            tensors.append(inp)
        outputs = [mod.InferRequestedOutput(OUTPUT)]
        kw = {"client_timeout": self.timeout} if self.protocol == "grpc" else {}
        result = self._call(lambda: self.client.infer(self.model, tensors, outputs=outputs, **kw), "inference")
        scores = result.as_numpy(OUTPUT)
        if scores is None or scores.size != n:
            shape = None if scores is None else list(scores.shape)
            raise ServiceError(
                f"shape mismatch: {self.model!r} at {self.url} returned {OUTPUT} {shape} for {n} items",
                "check that the model is the serengpt ensemble",
            )
        return scores.reshape(n).astype(np.float32)

    def score(self, profile_texts: str | Sequence[str], item_texts: Sequence[str]) -> np.ndarray:
        """P(serendipitous) per (profile, item); one profile string is broadcast to all items."""
        items = [str(x) for x in item_texts]
        profiles = [profile_texts] * len(items) if isinstance(profile_texts, str) else [str(x) for x in profile_texts]
        if len(profiles) != len(items):
            raise DataError(
                f"{len(profiles)} profile texts but {len(items)} item texts",
                "pass one profile per item, or a single profile",
            )
        if not items:
            return np.zeros(0, dtype=np.float32)
        step = self.max_batch_size()
        parts = [self._infer(profiles[i : i + step], items[i : i + step]) for i in range(0, len(items), step)]
        from seren.llm.calibration import apply_calibration

        return apply_calibration(self.calibration_to_apply(), np.concatenate(parts))
