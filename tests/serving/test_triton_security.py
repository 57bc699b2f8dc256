"""Issue 16 (2) on the real tritonserver: model control needs the launcher's key (HTTP and gRPC), the
project's one control client sends it, and the server does not inherit the caller's secrets."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from seren.errors import ServiceError
from serving.triton import CONTROL_HEADER, CONTROL_KEY_ENV, TritonControl, TritonServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def guarded(model_repo: Path, serving_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """A server started while the caller holds secrets in its environment (tokenizer model only: fast)."""
    log = tmp_path_factory.mktemp("guarded") / "tritonserver.log"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", "sk-parent-secret")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "aws-parent-secret")
        mp.setenv("PYTHONPATH", "/nonexistent/numpy2")
        mp.delenv(CONTROL_KEY_ENV, raising=False)
        server = TritonServer(model_repo, backend_dir=serving_dir / "backends", log_file=log, models=["tokenizer"])
        with server:
            yield server


def _post(url: str, path: str, headers: dict | None = None, body: dict | None = None) -> int:
    req = urllib.request.Request(
        f"http://{url}{path}", data=json.dumps(body or {}).encode(), method="POST", headers=headers or {}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_model_control_without_the_key_is_refused_over_http(guarded: TritonServer) -> None:
    url = guarded.http_url
    # a load with a `file:` override would run this Python inside tritonserver
    evil = {"parameters": {"config": "{}", "file:1/model.py": "aW1wb3J0IG9z"}}
    assert _post(url, "/v2/repository/models/pwn/load", body=evil) == 403
    assert _post(url, "/v2/repository/models/tokenizer/unload") == 403
    assert _post(url, "/v2/repository/models/tokenizer/unload", {CONTROL_HEADER: "wrong"}) == 403
    assert _post(url, "/v2/repository/index") == 403
    assert guarded.model_ready("tokenizer")  # still serving
    assert _post(url, "/v2/repository/models/scorer/load", {CONTROL_HEADER: guarded.control_key}) == 200
    assert guarded.model_ready("scorer")
    guarded.unload("scorer")  # the launcher's handle sends the key
    assert not guarded.model_ready("scorer")


def test_model_control_without_the_key_is_refused_over_grpc(guarded: TritonServer) -> None:
    c = grpcclient.InferenceServerClient(guarded.grpc_url)
    try:
        with pytest.raises(InferenceServerException, match="restricted"):
            c.unload_model("tokenizer")
        assert c.is_model_ready("tokenizer")  # health/metadata stay open
        c.load_model("tokenizer", headers={f"triton-grpc-protocol-{CONTROL_HEADER}": guarded.control_key})
    finally:
        c.close()
    assert guarded.model_ready("tokenizer")


def test_control_client_sends_the_key_from_the_environment(
    guarded: TritonServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CONTROL_KEY_ENV, raising=False)
    with pytest.raises(ServiceError, match="restricted and no control key was sent") as err:
        TritonControl(guarded.http_url).load("scorer")
    assert "\n" not in err.value.line() and CONTROL_KEY_ENV in err.value.line()
    assert guarded.control_key not in err.value.line()
    monkeypatch.setenv(CONTROL_KEY_ENV, "not-the-key")
    with pytest.raises(ServiceError, match="the control key was wrong"):
        TritonControl(guarded.http_url).load("scorer")
    monkeypatch.setenv(CONTROL_KEY_ENV, guarded.control_key)
    ctl = TritonControl(guarded.http_url)
    ctl.load("scorer")
    assert ctl.loaded_versions("scorer") == [1]
    ctl.unload("scorer")
    assert guarded.control_key not in repr(ctl)


def test_server_gets_a_minimal_environment_and_the_key_is_not_logged(guarded: TritonServer) -> None:
    assert guarded.proc is not None
    raw = Path(f"/proc/{guarded.proc.pid}/environ").read_bytes()
    env = dict(e.split(b"=", 1) for e in raw.split(b"\0") if b"=" in e)
    assert b"OPENAI_API_KEY" not in env and b"AWS_SECRET_ACCESS_KEY" not in env and b"PYTHONPATH" not in env
    assert b"sk-parent-secret" not in raw
    assert env[b"PATH"].split(b":")[0] == str(guarded.venv / "bin").encode()
    assert guarded.control_key.encode() not in raw
    assert guarded.control_key not in guarded.log_file.read_text()
    other = TritonServer(guarded.model_repo)
    assert other.control_key != guarded.control_key  # one random key per server
