"""`seren serve`: run the local Triton Inference Server on a SerenGPT model repository."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import typer

from seren.commands._common import JsonOpt
from seren.errors import ConfigError, ServiceError
from seren.paths import serving_dir, triton_model_repository


def default_repo() -> Path:
    return triton_model_repository()


def serve(
    repo: Path = typer.Argument(None, help="Triton model repository [default: <SEREN_HOME>/triton/model_repository]."),
    http_port: int = typer.Option(
        8000, "--http-port", min=0, max=65535, help="HTTP port on 127.0.0.1 (0: a free port)."
    ),
    grpc_port: int = typer.Option(
        8001, "--grpc-port", min=0, max=65535, help="gRPC port on 127.0.0.1 (0: a free port)."
    ),
    model: list[str] = typer.Option(
        ["serengpt"], "--model", "-m", help="Model(s) to load at start (explicit model control)."
    ),
    build_from: Path = typer.Option(
        None,
        "--build-from",
        help="Export this SerenGPT model dir to ONNX and (re)build the repository (local target) first.",
    ),
    log_file: Path = typer.Option(None, "--log-file", help="Server log [default: <SEREN_HOME>/triton/logs/]."),
    startup_timeout: float = typer.Option(
        120.0, "--startup-timeout", min=1.0, max=3600.0, help="Seconds to wait for readiness."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Start tritonserver (from .venv-triton) on 127.0.0.1, load the models, serve until Ctrl-C."""
    if http_port and http_port == grpc_port:
        raise ConfigError(f"--http-port and --grpc-port are both {http_port}", "give them different ports")
    repo = (repo or default_repo()).resolve()
    if build_from is None and not repo.is_dir():
        raise ConfigError(
            f"model repository {repo} does not exist",
            "build one with `seren serve --build-from MODEL_DIR` or `seren promote`, or pass its path",
        )
    if log_file is not None and log_file.is_dir():
        raise ConfigError(f"--log-file {log_file} is a directory", "pass a file path, e.g. --log-file triton.log")
    from serving.triton import TritonServer

    if build_from is not None:
        from serving.export import export_onnx
        from serving.model_repository import build_model_repository

        onnx_path = export_onnx(build_from, serving_dir() / "scorer.onnx")
        build_model_repository(onnx_path, build_from, repo, target="local")
    server = TritonServer(
        repo, http_port or None, grpc_port or None, log_file, models=model, startup_timeout=startup_timeout
    )

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        with server:
            info = {
                "http_url": server.http_url,
                "grpc_url": server.grpc_url,
                "models": model,
                "model_repository": str(repo),
                "log_file": str(server.log_file),
                "pid": server.proc.pid if server.proc else None,
                "model_control": "key from $SEREN_TRITON_CONTROL_KEY"
                if os.environ.get("SEREN_TRITON_CONTROL_KEY")
                else "random key (set SEREN_TRITON_CONTROL_KEY to control this server from another process)",
            }
            if as_json:
                typer.echo(json.dumps(info))
            else:
                typer.echo(
                    f"Triton ready: http {server.http_url}  grpc {server.grpc_url}  models {', '.join(model)}\n"
                    f"  model control restricted: {info['model_control']}\n"
                    f"  log {server.log_file}\n  try: seren query --url {server.http_url} --profile-text '...' --item-text '...'\n"
                    "  Ctrl-C to stop"
                )
            try:
                while server.running:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                return
            raise ServiceError(
                f"tritonserver exited unexpectedly (log: {server.log_file})", "read the log and restart `seren serve`"
            )
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(root: typer.Typer) -> None:
    root.command("serve")(serve)
