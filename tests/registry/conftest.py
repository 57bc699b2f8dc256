"""Registry fixtures: the tiny scorer exported once, hand-built scorer graphs, reports, an
environments file writer, and the GCS emulator started on loopback (module scope)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

VENV_BIN = Path(sys.executable).parent
WORKER = Path(__file__).resolve().parent / "worker.py"

PASSED = {
    "passed": True,
    "gates": {"onnx_max_abs_diff": {"value": 2e-6, "threshold": 1e-3, "passed": True, "status": "pass"}},
}
FAILED = {
    "passed": False,
    "gates": {"onnx_max_abs_diff": {"value": 0.2, "threshold": 1e-3, "passed": False, "status": "fail"}},
}


@pytest.fixture(scope="session")
def tiny_onnx(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's real scorer export (the serving helper's exporter)."""
    from serving.export import export_onnx

    return export_onnx(tiny_model_dir, tmp_path_factory.mktemp("registry_onnx") / "scorer.onnx")


def scorer_graph(path: Path, value: float) -> Path:
    """An ONNX graph with the scorer's interface (input_ids, attention_mask [B, T] -> score [B]) that
    returns `value` for every row (float('nan') for a numerically broken model)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    dyn = ["batch", "sequence"]
    nodes = [
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["m", "axes"], ["s"], keepdims=0),
        helper.make_node("Mul", ["s", "zero"], ["z"]),
        helper.make_node("Add", ["z", "value"], ["score"]),
    ]
    inits = [
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("value", TensorProto.FLOAT, [], [np.float32(value)]),
    ]
    graph = helper.make_graph(
        nodes,
        "const_scorer",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, dyn),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, dyn),
        ],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def const_onnx(tmp_path_factory: pytest.TempPathFactory) -> Callable[[float], Path]:
    base = tmp_path_factory.mktemp("const_onnx")

    def make(value: float) -> Path:
        p = base / f"const-{value}.onnx"
        return p if p.exists() else scorer_graph(p, value)

    return make


def write_envs(path: Path, registry: str | Path, envs: dict[str, dict], **promotion: object) -> Path:
    """An environments file (the format of seren/registry/environments.yaml)."""
    doc = {
        "registry": str(registry),
        "promotion": {"metric": "roc_auc", "tolerance": 0.01, "keep_triton_versions": 2, **promotion},
        "environments": envs,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def envs_file(tmp_path: Path) -> Callable[..., Path]:
    """envs_file(staging_url=..., staging_repo=...) -> a dev/staging/prod file; dev and prod only write
    their repositories (verify: none) unless told otherwise; ordered=False lets staging skip dev."""

    def make(
        registry: str | Path | None = None,
        staging_url: str = "",
        staging_repo: Path | None = None,
        dev_verify: str = "none",
        ordered: bool = True,
        name: str = "environments.yaml",
        **promotion: object,
    ) -> Path:
        envs = {
            "dev": {"model_repository": str(tmp_path / "envs" / "dev"), "verify": dev_verify},
            "staging": {
                "requires": "dev" if ordered else None,
                "model_repository": str(staging_repo or tmp_path / "envs" / "staging"),
                "triton_url": staging_url,
                "verify": "none",
            },
            "prod": {"requires": "staging", "model_repository": str(tmp_path / "envs" / "prod"), "verify": "none"},
        }
        return write_envs(tmp_path / name, registry or tmp_path / "registry", envs, **promotion)

    return make


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gcp-storage-emulator (PyPI) on a free loopback port, in memory, bucket `seren-test`; yields its URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("gcs") / "emulator.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [str(VENV_BIN / "gcp-storage-emulator"), "start", "--host", "127.0.0.1", "--port", str(port),
             "--in-memory", "--default-bucket", "seren-test", "-q"],
            stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gcp-storage-emulator did not start: {log.read_text()[-500:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def gs_uri(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh gs:// prefix on the emulator (the real google-cloud-storage client, anonymous credentials)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    return f"gs://seren-test/t-{uuid.uuid4().hex[:8]}"


def seren_cli(*args: str) -> subprocess.CompletedProcess:
    """`seren ARGS` in this process through the real entry point (seren.cli.main: one-line errors, exit codes)."""
    import contextlib
    import io

    from seren.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["seren", *args], code, out.getvalue(), err.getvalue())


def run_seren(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed `seren` console script, as a user runs it."""
    return subprocess.run(
        [str(VENV_BIN / "seren"), *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300
    )


def race(tmp_path: Path, argvs: list[list[str]]) -> list[dict]:
    """Start one worker process per argv, release them together, return their JSON results (in order)."""
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(go), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for argv in argvs
    ]
    deadline = time.monotonic() + 180
    while len(list(tmp_path.glob("go.ready.*"))) < len(procs):  # every worker imported and waits at the barrier
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "workers did not get ready"
        time.sleep(0.05)
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-2000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return outs
