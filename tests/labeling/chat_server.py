"""A real OpenAI-compatible /v1/chat/completions server on a free loopback port.

`reply(prompt) -> str` decides the assistant text; returning an int sends that HTTP status
instead. A scripted stand-in, used only by the profile-summary tests in tests/profiles; the
teacher tests run against a real `transformers serve` (tests/labeling/conftest.py).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChatServer:
    def __init__(self, reply: Callable[[str], str | int]) -> None:
        self.reply = reply
        self.prompts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                server.prompts.append(prompt)
                out = server.reply(prompt)
                if isinstance(out, int):
                    return self._send(out, b'{"error": {"message": "boom"}}')
                msg = {"role": "assistant", "content": out}
                payload = {
                    "id": "c1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop", "message": msg}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
                self._send(200, json.dumps(payload).encode())

            def _send(self, code: int, data: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def backend(self, **kw: object):
        from seren.llm.backends import OpenAIBackend

        return OpenAIBackend(self.url, "teacher-test", retries=1, timeout=5.0, **kw)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
