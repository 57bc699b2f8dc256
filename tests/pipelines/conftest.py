"""Fixtures for the pipeline framework tests.

`fake_kfp` is a stand-in for a Kubeflow Pipelines API server (no cluster can run here): a real HTTP
server on a free loopback port that implements the handful of v2beta1 endpoints kfp.Client uses to
upload pipelines/versions, find or create experiments, start runs and create recurring runs, and
records every request. The real kfp.Client talks to it over HTTP, so request building, multipart
uploads and response parsing are exercised; only the cluster behind the API is fake. Tests that use
it say `mocked_kfp_cluster` in their names.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest


@dataclass
class FakeKfp:
    url: str = ""
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)  # version id -> record (+ "spec" text)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    recurring_runs: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail: dict[tuple[str, str], int] = field(default_factory=dict)  # (method, path) -> HTTP status to answer
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def new_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    def versions_of(self, pipeline_id: str) -> list[dict[str, Any]]:
        return [v for v in self.versions.values() if v["pipeline_id"] == pipeline_id]


def _filter_name(query: dict[str, list[str]]) -> str | None:
    raw = query.get("filter", [None])[0]
    if not raw:
        return None
    preds = json.loads(raw).get("predicates", [])
    return next((p.get("stringValue") or p.get("string_value") for p in preds if p.get("key") == "display_name"), None)


def _handler(fake: FakeKfp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            path, query = url.path, parse_qs(url.query)
            body = self._body() if method == "POST" else b""
            fake.requests.append((method, path))
            if (method, path) in fake.fail:
                return self._send(fake.fail[(method, path)], {"error": "injected failure", "code": 13})
            parts = path.strip("/").split("/")[2:]  # after apis/v2beta1
            if method == "GET" and parts == ["healthz"]:
                return self._send(200, {"multi_user": False, "tag_name": "2.5.0"})
            if method == "GET" and parts == ["pipelines"]:
                name = _filter_name(query)
                found = [p for p in fake.pipelines.values() if name is None or p["display_name"] == name]
                return self._send(200, {"pipelines": found, "total_size": len(found)} if found else {})
            if method == "POST" and parts == ["pipelines", "upload"]:
                spec = _multipart_file(self.headers["Content-Type"], body)
                pid = fake.new_id("pipeline")
                name = query["name"][0]
                fake.pipelines[pid] = {
                    "pipeline_id": pid,
                    "display_name": name,
                    "description": query.get("description", [""])[0],
                }
                vid = fake.new_id("version")
                fake.versions[vid] = {
                    "pipeline_id": pid,
                    "pipeline_version_id": vid,
                    "display_name": name,
                    "spec": spec,
                }
                return self._send(200, fake.pipelines[pid])
            if method == "POST" and parts == ["pipelines", "upload_version"]:
                spec = _multipart_file(self.headers["Content-Type"], body)
                pid = query["pipelineid"][0]
                if pid not in fake.pipelines:
                    return self._send(404, {"error": f"pipeline {pid} not found"})
                vid = fake.new_id("version")
                fake.versions[vid] = {
                    "pipeline_id": pid,
                    "pipeline_version_id": vid,
                    "display_name": query["name"][0],
                    "description": query.get("description", [""])[0],
                    "spec": spec,
                }
                return self._send(200, {k: v for k, v in fake.versions[vid].items() if k != "spec"})
            if method == "GET" and len(parts) == 3 and parts[0] == "pipelines" and parts[2] == "versions":
                name = _filter_name(query)
                found = [
                    {k: v for k, v in rec.items() if k != "spec"}
                    for rec in fake.versions_of(parts[1])
                    if name is None or rec["display_name"] == name
                ]
                return self._send(200, {"pipeline_versions": found, "total_size": len(found)} if found else {})
            if method == "GET" and parts == ["experiments"]:
                name = _filter_name(query)
                found = [e for e in fake.experiments.values() if name is None or e["display_name"] == name]
                return self._send(200, {"experiments": found} if found else {})
            if method == "POST" and parts == ["experiments"]:
                exp = json.loads(body)
                eid = fake.new_id("experiment")
                fake.experiments[eid] = {"experiment_id": eid, "display_name": exp["display_name"]}
                return self._send(200, fake.experiments[eid])
            if method == "POST" and parts == ["runs"]:
                run = json.loads(body)
                run["run_id"] = fake.new_id("run")
                fake.runs.append(run)
                return self._send(200, run)
            if method == "POST" and parts == ["recurringruns"]:
                job = json.loads(body)
                job["recurring_run_id"] = fake.new_id("recurring")
                fake.recurring_runs.append(job)
                return self._send(200, job)
            return self._send(404, {"error": f"no route {method} {path}"})

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            self._route("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._route("POST")

    return Handler


def _multipart_file(content_type: str, body: bytes) -> str:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    for part in msg.iter_parts():
        if part.get_param("name", header="content-disposition") == "uploadfile":
            return part.get_payload(decode=True).decode()
    raise AssertionError("upload without an 'uploadfile' part")


@pytest.fixture
def fake_kfp() -> Iterator[FakeKfp]:
    fake = FakeKfp()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
