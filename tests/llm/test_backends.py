from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from seren.errors import ConfigError, ServiceError
from seren.llm.backends import LocalBackend, OpenAIBackend, TextBackend, get_backend


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _ChatServer:
    """A real HTTP server speaking just enough of /v1/chat/completions; `mode` picks its behaviour."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict] = []
        self.failures_left = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                if server.failures_left > 0:
                    server.failures_left -= 1
                    return self._send(503, b'{"error": {"message": "warming up"}}')
                if server.mode == "slow":
                    time.sleep(1.5)
                if server.mode == "garbage":
                    return self._send(200, b"<html>definitely not json", "text/html")
                if server.mode == "no_choices":
                    return self._send(200, b'{"id": "x", "object": "chat.completion", "choices": []}')
                prompt = body["messages"][-1]["content"]
                reply = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": f" echo: {prompt[::-1]} "},
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
                self._send(200, json.dumps(reply).encode())

            def _send(self, code: int, payload: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server() -> Iterator[_ChatServer]:
    srv = _ChatServer()
    yield srv
    srv.close()


def test_openai_backend_round_trip_from_env(chat_server: _ChatServer, monkeypatch) -> None:
    monkeypatch.setenv("SEREN_OPENAI_BASE_URL", chat_server.url)
    monkeypatch.setenv("SEREN_OPENAI_MODEL", "teacher-7b")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    backend = get_backend("openai")
    assert isinstance(backend, TextBackend)
    assert backend.complete("abc", max_new_tokens=5) == "echo: cba"
    (req,) = chat_server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["model"] == "teacher-7b" and req["body"]["max_tokens"] == 5
    assert req["auth"] == "Bearer sk-test"


def test_openai_backend_retries_transient_errors(chat_server: _ChatServer) -> None:
    chat_server.failures_left = 2
    backend = OpenAIBackend(chat_server.url, "m", retries=3, backoff=0.01)
    assert backend.complete("hi") == "echo: ih"
    assert len(chat_server.requests) == 3


def test_openai_backend_gives_up_after_bounded_retries(chat_server: _ChatServer) -> None:
    chat_server.failures_left = 10
    backend = OpenAIBackend(chat_server.url, "m", retries=2, backoff=0.01)
    with pytest.raises(ServiceError, match="failed after 2 attempts") as e:
        backend.complete("hi")
    assert len(chat_server.requests) == 2
    assert "\n" not in e.value.line()


def test_openai_backend_down_endpoint() -> None:
    backend = OpenAIBackend(f"http://127.0.0.1:{free_port()}/v1", "m", timeout=2, retries=2, backoff=0.01)
    with pytest.raises(ServiceError, match="APIConnectionError") as e:
        backend.complete("hi")
    assert "Fix:" in e.value.line() and "\n" not in e.value.line()


def test_openai_backend_timeout(chat_server: _ChatServer) -> None:
    chat_server.mode = "slow"
    backend = OpenAIBackend(chat_server.url, "m", timeout=0.3, retries=1, backoff=0.01)
    with pytest.raises(ServiceError, match="APITimeoutError"):
        backend.complete("hi")


@pytest.mark.parametrize("mode", ["garbage", "no_choices"])
def test_openai_backend_garbage_response(chat_server: _ChatServer, mode: str) -> None:
    chat_server.mode = mode
    backend = OpenAIBackend(chat_server.url, "m", retries=1)
    with pytest.raises(ServiceError, match="invalid response|without choices") as e:
        backend.complete("hi")
    assert "\n" not in e.value.line()


def test_openai_from_env_requires_settings(monkeypatch) -> None:
    monkeypatch.delenv("SEREN_OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="SEREN_OPENAI_BASE_URL is not set"):
        OpenAIBackend.from_env()
    monkeypatch.setenv("SEREN_OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.delenv("SEREN_OPENAI_MODEL", raising=False)
    with pytest.raises(ConfigError, match="SEREN_OPENAI_MODEL is not set"):
        OpenAIBackend.from_env()
    with pytest.raises(ConfigError, match="invalid OpenAI base URL"):
        OpenAIBackend("localhost:8000", "m")


def test_get_backend_names(tiny_model_dir: Path) -> None:
    assert get_backend("none") is None and get_backend(None) is None
    with pytest.raises(ConfigError, match="unknown text backend"):
        get_backend("llamafile")
    local = get_backend("local", model_dir=tiny_model_dir)
    assert isinstance(local, LocalBackend) and isinstance(local, TextBackend)


def test_local_backend_is_greedy_and_bounded(tiny_model_dir: Path) -> None:
    backend = LocalBackend(tiny_model_dir)
    a = backend.complete("Summarise: likes jazz, vinyl, headphones.", max_new_tokens=6)
    b = backend.complete("Summarise: likes jazz, vinyl, headphones.", max_new_tokens=6)
    assert isinstance(a, str) and a == b
    assert len(backend.tokenizer(a, add_special_tokens=False)["input_ids"]) <= 6
