"""submit / schedule through the real kfp.Client. No Kubeflow cluster can run here, so the API
server is `fake_kfp` (see conftest.py) and these tests say `mocked_kfp_cluster`; the unreachable and
wrong-host cases need no mock at all."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

import pipelines as P
from seren.cli import main
from seren.errors import ConfigError, ServiceError


def test_submit_mocked_kfp_cluster(fake_kfp) -> None:
    version = P.pipeline_version()
    res = P.submit("features", fake_kfp.url, experiment="exp-a", params={"n_users": 50, "source": "synthetic"})

    assert res["pipeline"] == "seren-features"
    assert res["version_name"] == f"seren-features-{version}" and not res["reused_version"]
    assert res["url"].endswith(f"/#/runs/details/{res['run_id']}")
    # one pipeline; its versions: the initial upload plus ours, named with the package version + sha
    (pipeline,) = fake_kfp.pipelines.values()
    assert pipeline["display_name"] == "seren-features"
    ours = fake_kfp.versions[res["version_id"]]
    assert ours["display_name"] == f"seren-features-{version}"
    spec = yaml.safe_load(ours["spec"])
    assert spec["pipelineInfo"]["name"] == "seren-features"
    assert version in spec["pipelineInfo"]["description"]
    # the run pins exactly that version and carries the typed parameters
    (run,) = fake_kfp.runs
    assert run["experiment_id"] == res["experiment_id"]
    assert run["pipeline_version_reference"] == {
        "pipeline_id": pipeline["pipeline_id"],
        "pipeline_version_id": res["version_id"],
    }
    assert run["runtime_config"]["parameters"] == {"n_users": 50, "source": "synthetic"}
    assert [e["display_name"] for e in fake_kfp.experiments.values()] == ["exp-a"]

    again = P.submit("features", fake_kfp.url, experiment="exp-a")
    assert again["reused_version"] and again["version_id"] == res["version_id"]
    assert len(fake_kfp.pipelines) == 1 and len(fake_kfp.experiments) == 1 and len(fake_kfp.runs) == 2


def test_schedule_mocked_kfp_cluster(fake_kfp) -> None:
    res = P.schedule("features", fake_kfp.url, every="15m", params={"seed": 3})
    assert res["interval_seconds"] == 900 and res["every"] == "15m"
    (job,) = fake_kfp.recurring_runs
    assert job["recurring_run_id"] == res["recurring_run_id"]
    assert job["trigger"]["periodic_schedule"]["interval_second"] == 900
    assert job["max_concurrency"] == 1 and job["no_catchup"] is True and job["mode"] == "ENABLE"
    assert job["runtime_config"]["parameters"] == {"seed": 3}
    assert job["pipeline_version_reference"]["pipeline_version_id"] == res["version_id"]
    assert fake_kfp.versions[res["version_id"]]["display_name"] == f"seren-features-{P.pipeline_version()}"


def test_submit_api_error_mocked_kfp_cluster(fake_kfp) -> None:
    fake_kfp.fail[("POST", "/apis/v2beta1/runs")] = 500
    with pytest.raises(ServiceError) as err:
        P.submit("features", fake_kfp.url)
    line = err.value.line()
    assert fake_kfp.url in line and "start a run of seren-features" in line and "HTTP 500" in line
    assert "\n" not in line


def test_cli_submit_and_schedule_json_mocked_kfp_cluster(fake_kfp, capsys) -> None:
    main(["pipeline", "submit", "features", "--host", fake_kfp.url, "--param", "n_users=7", "--json"])
    out = json.loads(capsys.readouterr().out)  # stdout is pure JSON: kfp.Client's link prints are kept off it
    assert out["params"] == {"n_users": 7} and fake_kfp.runs[0]["runtime_config"]["parameters"] == {"n_users": 7}
    main(["pipeline", "schedule", "features", "--host", fake_kfp.url, "--every", "2h", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert (
        out["interval_seconds"] == 7200 == fake_kfp.recurring_runs[0]["trigger"]["periodic_schedule"]["interval_second"]
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: nothing listens there


def test_submit_unreachable_host_is_one_line(capsys) -> None:
    host = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ServiceError, match="unreachable") as err:
        P.submit("features", host)
    assert host in err.value.line() and "port-forward" in err.value.line()
    with pytest.raises(SystemExit) as exit_:
        main(["pipeline", "submit", "features", "--host", host])
    assert exit_.value.code == 3
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Kubeflow Pipelines host") and host in lines[0]


def test_submit_to_a_server_that_is_not_kfp() -> None:
    class NotKfp(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotKfp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ServiceError, match="not a Kubeflow Pipelines API"):
            P.schedule("features", f"http://127.0.0.1:{server.server_address[1]}", every="1h")
    finally:
        server.shutdown()
        server.server_close()


def test_bad_host_and_interval_fail_before_any_request(fake_kfp) -> None:
    with pytest.raises(ConfigError, match="not an http"):
        P.submit("features", fake_kfp.url.removeprefix("http://"))
    with pytest.raises(ConfigError, match="positive duration"):
        P.schedule("features", fake_kfp.url, every="0m")
    with pytest.raises(ConfigError, match="no parameter 'nope'"):
        P.submit("features", fake_kfp.url, params={"nope": 1})
    assert fake_kfp.requests == []
