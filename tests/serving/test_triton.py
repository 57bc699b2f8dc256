"""Against the real tritonserver: ensemble scores equal in-process scores; model control; failures."""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient

from seren.errors import ConfigError, ServiceError
from serving.client import SerenClient
from serving.triton import TritonServer, free_port

from .conftest import ITEMS, PROFILES

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_ensemble_scores_equal_in_process_scores(triton, tiny_scorer, protocol: str) -> None:
    url = triton.http_url if protocol == "http" else triton.grpc_url
    with SerenClient(url, protocol) as client:
        client.check_model()
        got = client.score(PROFILES, ITEMS)
        one = client.score(PROFILES[2], ITEMS)  # one profile broadcast to all items
    np.testing.assert_allclose(got, tiny_scorer.score(PROFILES, ITEMS), atol=1e-5)
    np.testing.assert_allclose(one, tiny_scorer.score(PROFILES[2], ITEMS), atol=1e-5)


def _scorer_stats(url: str) -> tuple[int, int]:
    c = httpclient.InferenceServerClient(url)
    try:
        s = c.get_inference_statistics("scorer")["model_stats"][0]
    finally:
        c.close()
    return int(s["inference_count"]), int(s["execution_count"])


def test_concurrent_requests_of_different_lengths_are_batched_correctly(triton, tiny_scorer) -> None:
    """32 concurrent single-item requests of varying prompt length: the dynamic batcher groups
    them (fewer executions than inferences) and the re-padded batch still gives each its score."""
    profiles = [PROFILES[i % 4] + " extra" * (i % 7) for i in range(32)]
    items = [ITEMS[i % 4] for i in range(32)]
    ref = tiny_scorer.score(profiles, items)
    inf0, exe0 = _scorer_stats(triton.http_url)

    def one(i: int) -> float:
        with SerenClient(triton.grpc_url, "grpc") as c:
            return float(c.score(profiles[i], [items[i]])[0])

    with ThreadPoolExecutor(32) as pool:
        got = np.array(list(pool.map(one, range(32))))
    np.testing.assert_allclose(got, ref, atol=1e-5)
    inf1, exe1 = _scorer_stats(triton.http_url)
    assert inf1 - inf0 == 32
    assert exe1 - exe0 < 32, "no request was batched with another"


def test_model_control_unload_and_load(triton) -> None:
    assert triton.model_ready("serengpt") and triton.model_ready("scorer")
    triton.unload("serengpt")
    try:
        assert not triton.model_ready("serengpt") and not triton.model_ready("scorer")  # dependents unloaded too
        with SerenClient(triton.http_url, retries=0) as c, pytest.raises(ServiceError, match="not ready"):
            c.check_model()
    finally:
        triton.load("serengpt")
    assert triton.model_ready("serengpt") and triton.model_ready("tokenizer")
    with SerenClient(triton.http_url) as c:
        assert c.score("likes jazz", ["a record"]).shape == (1,)
    with pytest.raises(ServiceError, match="could not load model 'no_such_model'"):
        triton.load("no_such_model")


def test_client_errors_are_one_line(triton, monkeypatch: pytest.MonkeyPatch) -> None:
    with SerenClient(triton.http_url, model="no_such_model", retries=0) as c:
        with pytest.raises(ServiceError, match="unknown to Triton") as err:
            c.check_model()
        assert "\n" not in err.value.line()
        with pytest.raises(ServiceError, match="unknown"):
            c.score("p", ["i"])
    # with the control key, over gRPC: the repository index comes from serving.triton.TritonControl
    from serving.triton import CONTROL_KEY_ENV

    monkeypatch.setenv(CONTROL_KEY_ENV, triton.control_key)
    with SerenClient(triton.grpc_url, "grpc", model="no_such_model", retries=0) as c:
        with pytest.raises(ServiceError, match=r"unknown to Triton .*\(has: .*serengpt") as err:
            c.check_model()
        assert "\n" not in err.value.line()
    for proto, url in (("http", triton.http_url), ("grpc", triton.grpc_url)):
        with (
            SerenClient(url, proto, model="wide_output") as c,
            pytest.raises(ServiceError, match="shape mismatch: 'wide_output'.*\\[2, 2\\] for 2 items"),
        ):
            c.score("p", ["i", "j"])
        with SerenClient(url, proto, model="pair_input") as c, pytest.raises(ServiceError, match="shape mismatch"):
            c.score("p", ["i"])
        with (
            SerenClient(url, proto, model="scorer") as c,
            pytest.raises(ServiceError, match="not the SerenGPT interface|has inputs"),
        ):
            c.check_model()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_closed_port_is_retried_with_backoff_then_fails_in_one_line(protocol: str, monkeypatch) -> None:
    """Three attempts with exponential waits between them (0.2 s, 0.4 s): the waits the retry
    policy asked for are recorded, not timed (wall time belongs in benchmarks)."""
    import tenacity

    waits: list[float] = []
    real_sleep = tenacity.nap.time.sleep
    monkeypatch.setattr(tenacity.nap.time, "sleep", lambda s: (waits.append(s), real_sleep(s)))
    port = free_port()
    with SerenClient(f"127.0.0.1:{port}", protocol, retries=2, backoff=0.2) as c, pytest.raises(ServiceError) as err:
        c.score("p", ["i"])
    assert "unreachable" in err.value.line() and "after 3 attempts" in err.value.line()
    assert waits == pytest.approx([0.2, 0.4])


def test_bad_urls_and_arguments() -> None:
    with pytest.raises(ConfigError, match="scheme"):
        SerenClient("ftp://x:1")
    with pytest.raises(ConfigError, match="host:port"):
        SerenClient("localhost")
    from seren.errors import DataError

    with pytest.raises(DataError, match="2 profile texts but 1 item"):
        SerenClient("127.0.0.1:1").score(["a", "b"], ["c"])


def test_server_that_fails_to_start_reports_the_log_line(tmp_path: Path, serving_dir: Path) -> None:
    from tritonclient.grpc import model_config_pb2 as mc

    from serving.model_repository import write_config

    repo = tmp_path / "repo"
    (repo / "broken" / "1").mkdir(parents=True)
    write_config(mc.ModelConfig(name="broken", backend="no_such_backend"), repo / "broken")
    server = TritonServer(repo, models=["broken"], backend_dir=serving_dir / "backends", log_file=tmp_path / "log.txt")
    with pytest.raises(ServiceError, match="tritonserver exited with code .* while starting: .*broken") as err:
        server.start()
    assert "\n" not in err.value.line() and str(tmp_path / "log.txt") in err.value.line()
    assert server.proc is None


def test_missing_triton_venv_says_make_setup(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    with pytest.raises(ServiceError, match="make setup"):
        TritonServer(tmp_path / "repo", venv=tmp_path / "no-venv").start()
    with pytest.raises(ConfigError, match="does not exist"):
        TritonServer(tmp_path / "nope").start()


def test_stop_leaves_no_process_behind(model_repo: Path, serving_dir: Path, tmp_path: Path) -> None:
    server = TritonServer(
        model_repo, backend_dir=serving_dir / "backends", log_file=tmp_path / "log.txt", models=["tokenizer"]
    )
    with server:
        pid = server.proc.pid
        stubs = _session_members(pid)
        assert server.is_ready() and server.model_ready("tokenizer") and not server.model_ready("scorer")
        assert len(stubs) >= 2, stubs  # tritonserver and the tokenizer's python-backend stub
        code = server.stop()
    assert code == 0  # graceful: tritonserver exited on SIGTERM (a SIGKILL after the timeout gives -9)
    assert not server.running and server.stop() is None
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the server's process group (and its python-backend stubs) is gone
    for member in stubs:
        with pytest.raises(ProcessLookupError):
            os.kill(member, 0)
    with socket.socket() as s:  # nobody listens on its HTTP port any more
        assert s.connect_ex(("127.0.0.1", server.http_port)) != 0
    assert "Signal (15) received" in (tmp_path / "log.txt").read_text()


def _session_members(sid: int) -> list[int]:
    """Pids of the live processes in session `sid` (tritonserver starts its own session)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields after the name: state, ppid, pgrp, session
            members.append(int(stat.parent.name))
    return members
