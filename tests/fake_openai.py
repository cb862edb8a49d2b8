"""A scriptable OpenAI-compatible HTTP server on 127.0.0.1, shared by the remote-LLM tests.

Each test scripts what the next POSTs get (see `_act`); unscripted requests get a
well-formed answer. `/v1/completions` echoes prompts with made-up but deterministic token
log-probabilities (`fake_logprobs`), as vLLM does with `echo` and `logprobs`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "sk-test-Zq9SECRETkey0123456789"
_TOKEN = re.compile(r"<\|im_(?:start|end)\|>|\w+|\s|[^\w\s]")
SEEN_LOGPROB, NEW_LOGPROB = -0.1, -2.0


def fake_logprobs(text: str) -> list[tuple[str, int, float | None]]:
    """(token, text offset, log-probability) for a made-up tokenizer and language model.

    Tokens are ChatML markers, words, and single other characters. The "model" expects to
    repeat itself: a token seen earlier in the text costs SEEN_LOGPROB, a new one
    NEW_LOGPROB; the first token has none (nothing precedes it), as with real servers.
    """
    out: list[tuple[str, int, float | None]] = []
    seen: set[str] = set()
    for match in _TOKEN.finditer(text):
        token = match.group()
        logprob = None if not out else SEEN_LOGPROB if token in seen else NEW_LOGPROB
        out.append((token, match.start(), logprob))
        seen.add(token)
    return out


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

    @property
    def completion_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/v1/completions")]

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
                    if self.path.endswith("/v1/completions") and self._complete(action, body):
                        return
                    self._act(action, body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _complete(self, action: str, body: dict) -> bool:
                """The completions answers; False for an action `_act` handles (errors)."""
                prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
                if action not in ("ok", "nologprobs", "wrongcount", "nonnumeric"):
                    return False
                choices = [_echo_choice(i, p, action) for i, p in enumerate(prompts)]
                if action == "wrongcount":
                    choices = choices[:-1]
                self._send(200, json.dumps({
                    "id": "x", "object": "text_completion", "model": body["model"] + "-0613",
                    "choices": choices[::-1],  # any order: the index says which prompt
                    "usage": {"prompt_tokens": sum(len(fake_logprobs(p)) for p in prompts),
                              "completion_tokens": len(prompts)},
                }).encode())
                return True

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
                elif action.startswith("reply:"):  # this exact text as the answer
                    self._send(200, json.dumps({
                        "id": "x", "object": "chat.completion", "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": action[6:]}}],
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
                elif action.startswith("http:"):  # any other status
                    self._error(int(action[5:]), "not supported here")

        return Handler


def isolate(tmp_path, monkeypatch) -> None:
    """No user cache, config file or real key: every test sees only its own files."""
    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COOPBENCH_LLM_CONFIG", str(tmp_path / "no-config.yaml"))
    monkeypatch.setenv("OPENAI_COMPAT_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def _echo_choice(index: int, prompt: str, action: str) -> dict:
    """One echoed prompt plus one generated token, in the legacy completions format."""
    tokens = fake_logprobs(prompt) + [(" ok", len(prompt), -0.5)]
    logprobs: dict | None = {
        "tokens": [t for t, _, _ in tokens],
        "token_logprobs": [lp for _, _, lp in tokens],
        "text_offset": [off for _, off, _ in tokens],
        "top_logprobs": None,
    }
    if action == "nologprobs":
        logprobs = None
    elif action == "nonnumeric":
        logprobs["token_logprobs"] = ["very likely"] * len(tokens)
    return {"index": index, "text": prompt + " ok", "finish_reason": "length",
            "logprobs": logprobs}
