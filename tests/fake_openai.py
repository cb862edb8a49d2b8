"""A scriptable OpenAI-compatible HTTP server on 127.0.0.1, shared by the remote-LLM tests.

Each test scripts what the next POSTs get (see `_act`); unscripted requests get a
well-formed answer. `/v1/completions` echoes prompts with made-up but deterministic token
log-probabilities (`fake_logprobs`), as vLLM does with `echo` and `logprobs`.

`FakeServer.kind` makes unscripted answers take the request and response shapes of one
server (`KINDS`); the shapes are transcribed (not recorded: no network here) from each
server's documentation and source, named in `KINDS`:

- `default`: this file's original fake: honours llama.cpp's `grammar` (answers its first
  choice), ignores `guided_choice` and `response_format`, echoes a list of prompts.
- `vllm`: honours `guided_choice` (extra body) and `response_format` json_schema; echoes a
  list of prompts with `echo` + `logprobs`.
- `ollama`: honours `response_format` json_schema only (other fields are ignored: its Go
  request types have no such fields); `/v1/completions` takes one string prompt (a list is
  a 400 from JSON decoding) and answers without `logprobs` and without echo.
- `openai`: unknown fields (`grammar`, `guided_choice`) are a 400 `Unrecognized request
  argument supplied: <field>`; strict json_schema honoured; a chat model on
  `/v1/completions` is a 404 `This is a chat model and not supported ...`.
- `llama-cpp-python`: honours `grammar`; a list of more than one prompt on
  `/v1/completions` is a 500 (`assert len(body.prompt) <= 1`, whose message is empty);
  one prompt echoes.
- `shifted`: like `default`, but every echoed log-probability is the one llama-cpp-python
  gives a model without a BOS token: the next position's distribution evaluated at the
  token itself (one position off).
- `bare`: honours nothing and has no `/v1/completions` (404).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "sk-test-Zq9SECRETkey0123456789"
KINDS = {  # where each kind's shapes are transcribed from
    "default": "this file (the original fake)",
    "vllm": "https://docs.vllm.ai/en/v0.6.1/serving/openai_compatible_server.html "
            "(extra_body guided_choice; completions echo + logprobs)",
    "ollama": "https://github.com/ollama/ollama/blob/main/docs/openai.md (supported fields; "
              "`prompt` only a string; no logprobs, no echo) and "
              "https://github.com/ollama/ollama/blob/main/openai/openai.go (types, errors)",
    "openai": "https://github.com/hegelai/prompttools/issues/115 (404 body for a chat model on "
              "v1/completions); https://help.openai.com/en/articles/6897194 and "
              "https://dev-solve.com/posts/481d649 (400 `Unrecognized request argument "
              "supplied`); https://platform.openai.com/docs/guides/structured-outputs",
    "llama-cpp-python": "https://github.com/abetlen/llama-cpp-python/blob/main/llama_cpp/"
                        "server/app.py (`assert len(body.prompt) <= 1`) and server/errors.py "
                        "(500 `internal_server_error` body), version 0.3.36 as installed here",
    "shifted": "llama_cpp/llama.py 0.3.36, `_create_completion` echo logprobs without BOS",
    "bare": "a server with chat completions only",
}
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
        self.kind = "default"  # whose shapes unscripted answers take (`KINDS`)
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

            def _error(self, status: int, message: str, headers: dict | None = None,
                       error_type: str = "x", param: str | None = None) -> None:
                body = json.dumps({"error": {"message": message, "type": error_type,
                                             "param": param, "code": None}}).encode()
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
                if action == "ok" and server.kind not in ("default", "vllm", "shifted"):
                    self._kind_completion(server.kind, body, prompts)
                    return True
                mode = "shifted" if action == "ok" and server.kind == "shifted" else action
                choices = [_echo_choice(i, p, mode) for i, p in enumerate(prompts)]
                if action == "wrongcount":
                    choices = choices[:-1]
                self._send(200, json.dumps({
                    "id": "x", "object": "text_completion", "model": body["model"] + "-0613",
                    "choices": choices[::-1],  # any order: the index says which prompt
                    "usage": {"prompt_tokens": sum(len(fake_logprobs(p)) for p in prompts),
                              "completion_tokens": len(prompts)},
                }).encode())
                return True

            def _kind_completion(self, kind: str, body: dict, prompts: list[str]) -> None:
                """/v1/completions as the servers without vLLM-style echo answer it."""
                if kind == "bare":
                    self._error(404, "Not Found")
                elif kind == "openai":
                    self._error(404, "This is a chat model and not supported in the "
                                "v1/completions endpoint. Did you mean to use "
                                "v1/chat/completions?", error_type="invalid_request_error",
                                param="model")
                elif kind == "ollama":
                    if isinstance(body["prompt"], list):
                        self._error(400, "json: cannot unmarshal array into Go struct field "
                                    "CompletionRequest.prompt of type string",
                                    error_type="invalid_request_error")
                        return
                    self._send(200, json.dumps({
                        "id": "cmpl-1", "object": "text_completion", "created": 1,
                        "model": body["model"], "system_fingerprint": "fp_ollama",
                        "choices": [{"text": " ok", "index": 0, "finish_reason": "length"}],
                        "usage": {"prompt_tokens": 30, "completion_tokens": 1,
                                  "total_tokens": 31},
                    }).encode())
                elif kind == "llama-cpp-python":
                    if len(prompts) > 1:  # assert len(body.prompt) <= 1: an empty message
                        self._error(500, "", error_type="internal_server_error")
                        return
                    self._send(200, json.dumps({
                        "id": "cmpl-1", "object": "text_completion", "created": 1,
                        "model": body["model"], "choices": [_echo_choice(0, prompts[0], "ok")],
                        "usage": {"prompt_tokens": len(fake_logprobs(prompts[0])),
                                  "completion_tokens": 1,
                                  "total_tokens": len(fake_logprobs(prompts[0])) + 1},
                    }).encode())

            def _act(self, action: str, body: dict) -> None:
                if action == "ok":
                    time.sleep(server.default_hold_s)
                    refusal = _chat_refusal(server.kind, body)
                    if refusal:
                        self._error(*refusal)
                        return
                    text = _chat_text(server.kind, body)
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


def _chat_refusal(kind: str, body: dict) -> tuple[int, str] | None:
    """OpenAI refuses request fields it does not know (status, message)."""
    if kind == "openai":
        for field in ("grammar", "guided_choice"):
            if field in body:
                return 400, f"Unrecognized request argument supplied: {field}"
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
        if schema is not None and schema.get("type") != "object":  # root must be an object
            return 400, "Invalid schema for response_format 'choice': schema must be an object"
    return None


def _chat_text(kind: str, body: dict) -> str:
    """The reply: the first allowed choice where this kind honours the constraint sent,
    else an answer to the last message (a server that ignores the field)."""
    honours = {"default": ("grammar",), "shifted": ("grammar",), "bare": (),
               "vllm": ("guided_choice", "response_format"), "ollama": ("response_format",),
               "openai": ("response_format",), "llama-cpp-python": ("grammar",)}[kind]
    if "guided_choice" in body and "guided_choice" in honours:
        return body["guided_choice"][0]
    if "grammar" in body and "grammar" in honours:
        return body["grammar"].split('"')[1]  # the first choice
    format_ = body.get("response_format") or {}
    if format_.get("type") == "json_schema" and "response_format" in honours:
        schema = format_["json_schema"]["schema"]
        enum = schema["properties"]["choice"]["enum"] if schema.get("type") == "object" \
            else schema["enum"]
        value = {"choice": enum[0]} if schema.get("type") == "object" else enum[0]
        return json.dumps(value)
    return f"{body['model']} says: {body['messages'][-1]['content']}"


def _shifted(tokens: list[tuple[str, int, float | None]]) -> list[tuple[str, int, float | None]]:
    """Each token given the next position's probability of itself: in the fake model a
    token already seen is SEEN_LOGPROB, and a token is always seen by the next position."""
    return [(t, off, None if i == 0 else SEEN_LOGPROB) for i, (t, off, _) in enumerate(tokens)]


def _echo_choice(index: int, prompt: str, action: str) -> dict:
    """One echoed prompt plus one generated token, in the legacy completions format."""
    echoed = _shifted(fake_logprobs(prompt)) if action == "shifted" else fake_logprobs(prompt)
    tokens = echoed + [(" ok", len(prompt), -0.5)]
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
