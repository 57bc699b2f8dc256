"""Start the real Triton Inference Server locally, from its own venv.

`nvidia-pytriton` ships the `tritonserver` binary and the python backend. It runs from
`.venv-triton` (numpy<2: the python-backend stub returns empty tensors under numpy 2), with that
venv's `bin/` first on PATH because the stub embeds the `python3` it finds there. The backend
directory is assembled under `seren_home()` (libtriton_python.so + the stub for the venv's Python)
so the venv itself is never modified. The server runs in explicit model-control mode on free
loopback ports; models are loaded and unloaded through the model-control API.

Model control is restricted: a load request may carry a `file:` override, i.e. run arbitrary
Python inside tritonserver, so the model-repository (load/unload/index), shared-memory, trace
and logging APIs need a header `seren-control-key: <key>` over HTTP and gRPC. The key is random
per server unless SEREN_TRITON_CONTROL_KEY is set (to share it with `seren promote` in another
process); it is never written to disk or logged. `TritonControl` (serving/triton_control.py) is the one client of
those APIs and sends it. Health, metadata, model config, statistics and inference stay open.
Limit: the key is on tritonserver's command line (Triton 2.51 takes it nowhere else), which
other local users can read in /proc; run the server under its own user where that matters.
The server starts with a minimal environment (no API keys or cloud credentials of the caller).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from seren.errors import ConfigError, ServiceError
from seren.paths import REPO_ROOT, triton_dir, triton_logs_dir
from serving.triton_control import (  # noqa: F401 - re-exported: the server and its control client go together
    CONTROL_HEADER,
    CONTROL_KEY_ENV,
    TritonControl,
    control_headers,
)

SETUP_FIX = "run `make setup` (it creates .venv-triton from serving/requirements-triton.txt)"
RESTRICTED_APIS = "model-repository,shared-memory,trace,logging"
# What the server process inherits from the caller; everything else (API keys, cloud
# credentials, tokens) stays out of it.
ENV_PASSED = ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def triton_venv() -> Path:
    """The Triton venv: env SEREN_TRITON_VENV, else <repo>/.venv-triton."""
    return Path(os.environ.get("SEREN_TRITON_VENV", REPO_ROOT / ".venv-triton")).resolve()


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3.*/site-packages"))
    if not found:
        raise ServiceError(f"no Python site-packages in the Triton venv {venv}", SETUP_FIX)
    return found[-1]


def pytriton_server_dir(venv: Path | None = None) -> Path:
    """The tritonserver tree shipped inside nvidia-pytriton (bin/, backends/, python_backend_stubs/)."""
    venv = venv or triton_venv()
    if not (venv / "bin" / "python3").exists():
        raise ServiceError(f"the Triton venv {venv} is missing", SETUP_FIX)
    root = _site_packages(venv) / "pytriton" / "tritonserver"
    if not (root / "bin" / "tritonserver").exists():
        raise ServiceError(f"tritonserver not found in {root} (nvidia-pytriton not installed)", SETUP_FIX)
    return root


def prepare_backends(venv: Path | None = None, dest: Path | None = None) -> Path:
    """Assemble a backend directory with the python backend and the stub for the venv's Python.

    Copies (never edits the venv); re-copies only files whose size changed, so repeated starts
    are cheap.
    """
    venv = venv or triton_venv()
    root = pytriton_server_dir(venv)
    pyver = _site_packages(venv).parent.name.removeprefix("python")  # e.g. "3.11"
    stub = root / "python_backend_stubs" / pyver / "triton_python_backend_stub"
    if not stub.exists():
        raise ServiceError(f"no python-backend stub for Python {pyver} in {root}", SETUP_FIX)
    dest = Path(dest) if dest else triton_dir() / "backends"
    py = dest / "python"
    py.mkdir(parents=True, exist_ok=True)
    sources = [p for p in (root / "backends" / "python").iterdir() if p.is_file()] + [stub]
    for src in sources:
        dst = py / src.name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size:
            tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
            shutil.copy2(src, tmp)
            os.replace(tmp, dst)
    return dest


# Logged at every CPU-only start; never the reason a start failed.
_HARMLESS = ("CudaDriverHelper", "CUDA driver", "NVML", "DCGM", "GPU metrics", "cuda", "pinned memory")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux PR_SET_PDEATHSIG: SIGTERM the server if the process (thread) that started it dies,
    so a killed test run or benchmark never leaves a tritonserver behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _last_line(path: Path) -> str:
    """The most telling log line: the last error that is not a no-GPU warning, else the last line."""
    with contextlib.suppress(OSError):
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        lines = [ln for ln in lines if not any(h.lower() in ln.lower() for h in _HARMLESS)]
        errors = [ln for ln in lines if ln.startswith("E") or "error" in ln.lower()]
        if errors:
            return errors[-1][:400]
        if lines:
            return lines[-1][:400]
    return "(empty log)"


class TritonServer:
    """A local tritonserver process: `with TritonServer(repo) as srv: srv.load("serengpt")`.

    Ports default to free loopback ports; the combined stdout/stderr goes to `log_file`
    (default <seren_home>/triton/logs/tritonserver-<http_port>.log).
    """

    def __init__(
        self,
        model_repo: str | os.PathLike[str],
        http_port: int | None = None,
        grpc_port: int | None = None,
        log_file: str | os.PathLike[str] | None = None,
        *,
        models: list[str] | None = None,
        venv: str | os.PathLike[str] | None = None,
        backend_dir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 90.0,
        log_verbose: int = 0,
        control_key: str | None = None,
    ) -> None:
        self.model_repo = Path(model_repo).resolve()
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        while self.grpc_port == self.http_port:
            self.grpc_port = free_port()
        self.log_file = Path(log_file) if log_file else triton_logs_dir() / f"tritonserver-{self.http_port}.log"
        self.models = list(models or [])
        self.venv = Path(venv).resolve() if venv else triton_venv()
        self.backend_dir = Path(backend_dir) if backend_dir else None
        self.startup_timeout = startup_timeout
        self.log_verbose = log_verbose
        self.proc: subprocess.Popen[bytes] | None = None
        # held in memory only; repr=False-like: never part of a message or log line
        self.control_key = control_key or os.environ.get(CONTROL_KEY_ENV) or secrets.token_urlsafe(32)

    # -- addresses -------------------------------------------------------------------------
    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    # -- lifecycle ---------------------------------------------------------------------------
    def command(self) -> list[str]:
        root = pytriton_server_dir(self.venv)
        backends = prepare_backends(self.venv, self.backend_dir)
        cmd = [
            str(root / "bin" / "tritonserver"),
            f"--model-repository={self.model_repo}",
            "--model-control-mode=explicit",
            f"--backend-directory={backends}",
            "--http-address=127.0.0.1",
            f"--http-port={self.http_port}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={self.grpc_port}",
            "--allow-metrics=false",
            "--allow-gpu-metrics=false",
            "--strict-readiness=true",
            "--exit-timeout-secs=10",
            f"--log-verbose={self.log_verbose}",
            f"--http-restricted-api={RESTRICTED_APIS}:{CONTROL_HEADER}={self.control_key}",
            f"--grpc-restricted-protocol={RESTRICTED_APIS}:{CONTROL_HEADER}={self.control_key}",
        ]
        cmd += [f"--load-model={m}" for m in self.models]
        return cmd

    def _env(self) -> dict[str, str]:
        """A minimal environment: the Triton venv's bin/ first on PATH (the stub runs the python3 it
        finds there), its bundled libraries, and a few locale/thread settings; nothing else."""
        env = {k: os.environ[k] for k in ENV_PASSED if k in os.environ}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{SYSTEM_PATH}"
        env["VIRTUAL_ENV"] = str(self.venv)
        libs = _site_packages(self.venv) / "nvidia_pytriton.libs"  # the copied backend's RPATH no longer reaches it
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(libs), os.environ.get("LD_LIBRARY_PATH", "")) if p)
        return env

    def start(self) -> TritonServer:
        if self.proc is not None:
            return self
        if not self.model_repo.is_dir():
            raise ConfigError(
                f"model repository {self.model_repo} does not exist",
                "build it with serving.model_repository.build_model_repository",
            )
        if self.models:
            self.verify(self.models)  # modified weights are refused before the server reads them
        cmd = self.command()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
                preexec_fn=_die_with_parent,  # only a prctl call: safe between fork and exec
            )
        atexit.register(self.stop)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            code = self.proc.poll()
            if code is not None:
                raise ServiceError(
                    f"tritonserver exited with code {code} while starting: {_last_line(self.log_file)} (log: {self.log_file})",
                    "check the model repository and the log",
                )
            if self.is_ready():
                return
            time.sleep(0.2)
        raise ServiceError(
            f"tritonserver not ready after {self.startup_timeout:.0f}s: {_last_line(self.log_file)} (log: {self.log_file})",
            "check the log; a model listed to load at start may have failed",
        )

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (Triton drains in-flight requests), then SIGKILL the process group."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        atexit.unregister(self.stop)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # python-backend stubs live in the server's session; make sure none outlives it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- health + model control ------------------------------------------------------------------
    def _get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}{path}", timeout=2) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, OSError):
            return 0

    def is_ready(self) -> bool:
        return self._get("/v2/health/ready") == 200

    def model_ready(self, name: str, version: str = "") -> bool:
        path = f"/v2/models/{name}" + (f"/versions/{version}" if version else "") + "/ready"
        return self._get(path) == 200

    def control(self) -> TritonControl:
        """The model-control client of this server (sends its key)."""
        return TritonControl(self.http_url, key=self.control_key, log_file=self.log_file)

    def verify(self, models: list[str]) -> None:
        """The recorded weight hashes of `models` in this repository (serving.model_repository.verify_repository)."""
        from serving.model_repository import verify_repository

        verify_repository(self.model_repo, models)

    def load(self, name: str) -> None:
        """Verify the weights, then load (or reload) through the model-control API; ServiceError with Triton's reason."""
        self.verify([name])
        self.control().load(name)

    def unload(self, name: str, unload_dependents: bool = True) -> None:
        self.control().unload(name, unload_dependents=unload_dependents)
        deadline = time.monotonic() + 30
        while self.model_ready(name) and time.monotonic() < deadline:  # unload is asynchronous
            time.sleep(0.1)

    def repository_index(self) -> list[dict]:
        return self.control().repository_index()
