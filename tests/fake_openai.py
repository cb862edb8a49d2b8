"""A scriptable OpenAI-compatible HTTP server on 127.0.0.1, shared by the remote-LLM tests.

Each test scripts what the next POSTs get (see `_act`); unscripted requests get a
well-formed answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "sk-test-Zq9SECRETkey0123456789"


class FakeServer:
    """An OpenAI-compatible chat endpoint whose next answers a test scripts."""

    def __init__(self) -> None:
        self.script: deque[str] = deque()
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.default_hold_s = 0.0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def chat_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, message: str, headers: dict | None = None) -> None:
                body = json.dumps({"error": {"message": message, "type": "x"}}).encode()
                self._send(status, body, headers)

            def do_GET(self) -> None:
                server.requests.append({"path": self.path, "auth": self.headers["Authorization"]})
                self._send(200, json.dumps({"object": "list", "data": [
                    {"id": "m1", "object": "model"}]}).encode())

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "body": body,
                                            "auth": self.headers["Authorization"]})
                    action = server.script.popleft() if server.script else "ok"
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._act(action, body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _act(self, action: str, body: dict) -> None:
                if action == "ok":
                    time.sleep(server.default_hold_s)
                    text = f"{body['model']} says: {body['messages'][-1]['content']}"
                    if "grammar" in body:
                        text = body["grammar"].split('"')[1]  # the first choice
                    self._send(200, json.dumps({
                        "id": "x", "object": "chat.completion", "model": body["model"] + "-0613",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 7,
                                  "total_tokens": 18},
                    }).encode())
                elif action == "500":
                    self._error(500, "internal error")
                elif action.startswith("429:"):
                    self._error(429, "slow down", {"Retry-After": action[4:]})
                elif action.startswith("hang:"):
                    time.sleep(float(action[5:]))
                    self._error(500, "too late")
                elif action == "malformed":
                    self._send(200, b'{"choices": [{"message": ')
                elif action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                elif action == "401":
                    self._error(401, f"Incorrect API key provided: {self.headers['Authorization']}")
                elif action == "404":
                    self._error(404, f"The model `{body['model']}` does not exist")
                elif action == "400":
                    self._error(400, "max_tokens is too large")

        return Handler


def isolate(tmp_path, monkeypatch) -> None:
    """No user cache, config file or real key: every test sees only its own files."""
    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COOPBENCH_LLM_CONFIG", str(tmp_path / "no-config.yaml"))
    monkeypatch.setenv("OPENAI_COMPAT_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
