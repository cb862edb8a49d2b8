"""`coopbench llm serve`: the embedded model behind an OpenAI-compatible HTTP API.

It answers what the embedded backend answers, through the same code: chat completions are
`LocalBackend.chat` (the llama call `generate` makes, the client's `seed` used as llama's
sampling seed), constrained choice is the same choice grammar, and echoed prompt
log-probabilities come from the scoring context (`TokenTreeScorer.echo`: the common prefix
once, then the differing tails as one token tree), so a span's summed log-probability is
`LocalBackend.score`'s. Requests run in worker threads and queue on the model's lock.

Endpoints: `GET /v1/models`, `POST /v1/chat/completions`, `POST /v1/completions`. Errors are
one-line JSON bodies (`{"error": {"message": ..., "type": ...}}`) with a 4xx status.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request as HttpRequest

from coopbench.core.errors import CoopbenchError
from coopbench.llm.local import Echoed, LocalBackend
from coopbench.llm.request import Request

DEFAULT_MAX_TOKENS = 256  # chat, as `Request`; completions default to OpenAI's 16


class BadRequest(Exception):
    """A request the server refuses (400, or `status`), with a one-line reason."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def create_app(backend: LocalBackend) -> FastAPI:
    """The FastAPI application serving `backend` (whose model should already be loaded)."""
    app = FastAPI(title="coopbench llm serve", docs_url=None, redoc_url=None,
                  openapi_url=None)

    def error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
        line = " ".join(str(message).split())[:500]
        return JSONResponse({"error": {"message": line, "type": kind}}, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(_: HttpRequest, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, exc.detail or "error", "not_found_error"
                     if exc.status_code == 404 else "invalid_request_error")

    async def answer(http: HttpRequest, handler: Callable[[dict[str, Any]], dict]) -> JSONResponse:
        try:
            body = json.loads(await http.body())
        except (ValueError, UnicodeDecodeError) as exc:
            return error(400, f"the request body is not JSON: {exc}")
        if not isinstance(body, dict):
            return error(400, "the request body must be a JSON object")
        try:
            return JSONResponse(await run_in_threadpool(handler, body))
        except BadRequest as exc:
            return error(exc.status, str(exc))
        except CoopbenchError as exc:
            return error(400, str(exc))

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": backend.name, "object": "model",
                                            "created": 0, "owned_by": "coopbench"}]}

    @app.post("/v1/chat/completions")
    async def chat(http: HttpRequest) -> JSONResponse:
        return await answer(http, lambda body: chat_completion(backend, body))

    @app.post("/v1/completions")
    async def completions(http: HttpRequest) -> JSONResponse:
        return await answer(http, lambda body: completion(backend, body))

    return app


# -- request fields -----------------------------------------------------------------------

def _int(body: dict[str, Any], key: str, default: int | None, low: int = 0) -> int | None:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise BadRequest(f"{key} must be an integer >= {low}")
    return value


def _temperature(body: dict[str, Any]) -> float:
    value = body.get("temperature")
    if value is None:
        return 1.0  # OpenAI's default
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 2:
        raise BadRequest("temperature must be a number in [0, 2]")
    return float(value)


def _no_stream(body: dict[str, Any]) -> None:
    if body.get("stream"):
        raise BadRequest("stream=true is not supported: ask without streaming")
    if _int(body, "n", 1, low=1) != 1:
        raise BadRequest("n must be 1")


def _messages(body: dict[str, Any]) -> list[dict[str, str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    out = []
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):  # content parts: text only
            texts = [p.get("text") for p in content if isinstance(p, dict)]
            if not all(isinstance(t, str) for t in texts) or len(texts) != len(content):
                raise BadRequest("only text content parts are supported")
            content = "".join(texts)
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) \
                or not isinstance(content, str):
            raise BadRequest("each message needs a string role and content")
        out.append({"role": m["role"], "content": content})
    return out


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value) \
            or not any(value):
        raise BadRequest(f"{what} must be a non-empty list of strings")
    return value


def constraint(body: dict[str, Any]) -> tuple[list[str] | None, str | None, bool]:
    """(choices, grammar, reply as JSON) from `guided_choice`, a `response_format` JSON schema
    with a string enum, or a GBNF `grammar`; at most one of them."""
    given = [k for k in ("guided_choice", "response_format", "grammar") if body.get(k)]
    if len(given) > 1:
        raise BadRequest(f"give one constraint, not {' and '.join(given)}")
    if "guided_choice" in given:
        return _strings(body["guided_choice"], "guided_choice"), None, False
    if "grammar" in given:
        if not isinstance(body["grammar"], str):
            raise BadRequest("grammar must be a GBNF string")
        return None, body["grammar"], False
    if "response_format" in given:
        fmt = body["response_format"]
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind == "text":
            return None, None, False
        schema = fmt.get("json_schema") if kind == "json_schema" else None
        schema = schema.get("schema") if isinstance(schema, dict) else None
        if not isinstance(schema, dict) or schema.get("type", "string") != "string" \
                or set(schema) - {"type", "enum", "title", "description"} \
                or "enum" not in schema:
            raise BadRequest("response_format: only a json_schema of "
                             '{"type": "string", "enum": [...]} is supported')
        return _strings(schema["enum"], "response_format's enum"), None, True
    return None, None, False


# -- chat ---------------------------------------------------------------------------------

def chat_completion(backend: LocalBackend, body: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion object for an OpenAI chat request."""
    _no_stream(body)
    messages = _messages(body)
    max_tokens = _int(body, "max_completion_tokens", None, low=1)
    max_tokens = _int(body, "max_tokens", max_tokens or DEFAULT_MAX_TOKENS, low=1)
    seed = _int(body, "seed", None)
    if seed is None:  # the embedded backend's seed for a request without one
        seed = Request(messages=tuple(messages)).sampling_seed()
    choices, grammar, as_json = constraint(body)
    out, extra = backend.chat(messages, temperature=_temperature(body), max_tokens=max_tokens,
                              seed=seed, choices=choices, grammar=grammar)
    text = out["choices"][0]["message"].get("content") or ""
    if as_json:
        text = json.dumps(text, ensure_ascii=False)
    usage = out.get("usage") or {}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": backend.name,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "logprobs": None, "finish_reason": extra.get("finish_reason") or "stop"}],
        "usage": _usage(int(usage.get("prompt_tokens", 0)),
                        int(usage.get("completion_tokens", 0))),
    }


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


# -- completions --------------------------------------------------------------------------

def completion(backend: LocalBackend, body: dict[str, Any]) -> dict[str, Any]:
    """A text_completion object; with `echo`, the prompts' token log-probabilities."""
    _no_stream(body)
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or \
            not all(isinstance(p, str) and p for p in prompts):
        raise BadRequest("prompt must be a non-empty string or a list of them")
    max_tokens = _int(body, "max_tokens", 16)
    logprobs = _int(body, "logprobs", None)
    if body.get("echo"):
        if max_tokens > 1:
            raise BadRequest("echo takes max_tokens 0 or 1 (scoring), not more")
        echoed = backend.echo(prompts)  # nothing generated: max_tokens 1 is for clients
        choices = [_echo_choice(i, p, e, logprobs is not None)  # that cannot send 0
                   for i, (p, e) in enumerate(zip(prompts, echoed, strict=True))]
        usage = _usage(sum(len(e.pieces) for e in echoed), 0)
    else:
        if logprobs is not None:
            raise BadRequest("logprobs are served with echo only")
        choices, usage = _generate(backend, body, prompts, max_tokens)
    return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
            "created": int(time.time()), "model": backend.name, "choices": choices,
            "usage": usage}


def _generate(backend: LocalBackend, body: dict[str, Any], prompts: list[str],
              max_tokens: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str) and \
            not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise BadRequest("stop must be a string or a list of strings")
    temperature = _temperature(body)
    seed = _int(body, "seed", None)
    llama, lock = backend.llama()
    choices, used_in, used_out = [], 0, 0
    for i, prompt in enumerate(prompts):
        with lock:
            try:
                out = llama.create_completion(
                    prompt, max_tokens=max_tokens or None, temperature=temperature, stop=stop,
                    seed=Request(messages=()).sampling_seed() if seed is None else seed)
            except ValueError as exc:
                raise CoopbenchError(str(exc).splitlines()[0]) from None
        usage = out.get("usage") or {}
        used_in += int(usage.get("prompt_tokens", 0))
        used_out += int(usage.get("completion_tokens", 0))
        first = out["choices"][0]
        choices.append({"index": i, "text": first.get("text") or "", "logprobs": None,
                        "finish_reason": first.get("finish_reason") or "stop"})
    return choices, _usage(used_in, used_out)


def _echo_choice(index: int, prompt: str, echoed: Echoed, with_logprobs: bool) -> dict:
    tokens, offsets = text_offsets(echoed.pieces, prompt)
    logprobs = {"tokens": tokens, "token_logprobs": list(echoed.logprobs),
                "text_offset": offsets, "top_logprobs": None} if with_logprobs else None
    return {"index": index, "text": prompt, "logprobs": logprobs, "finish_reason": "length"}


def text_offsets(pieces: list[bytes], text: str) -> tuple[list[str], list[int]]:
    """Each token's text and the character offset in `text` where it starts.

    A token that starts inside a multi-byte character counts from that character; its
    text is the bytes it holds, undecodable bytes replaced.
    """
    data = text.encode("utf-8")
    joined = b"".join(pieces)
    lead = 1 if joined == b" " + data else 0  # SentencePiece's added leading space
    if joined[lead:] != data:
        raise CoopbenchError("the prompt's tokens do not spell the prompt back")
    char_at = [0] * (len(data) + 1)  # byte index -> index of the character holding it
    byte = 0
    for i, ch in enumerate(text):
        width = len(ch.encode("utf-8"))
        char_at[byte : byte + width] = [i] * width
        byte += width
    char_at[len(data)] = len(text)
    tokens, offsets, byte = [], [], -lead
    for piece in pieces:
        tokens.append(piece.decode("utf-8", "replace"))
        offsets.append(char_at[max(byte, 0)])
        byte += len(piece)
    return tokens, offsets


# -- running ------------------------------------------------------------------------------

def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:`port`; a port in use is one line."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not a listening port
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise CoopbenchError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror}") from None
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, except that SIGINT/SIGTERM end it with status 0: stopping is how
    a server ends, not an error (uvicorn would re-raise the signal after shutting down)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def run(app: FastAPI, sock: socket.socket) -> None:
    """Serve `app` on `sock` until SIGINT/SIGTERM; requests in flight are answered first."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_keep_alive=30)
    try:
        _Server(config).run(sockets=[sock])
    finally:
        sock.close()
