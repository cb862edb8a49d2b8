"""OpenAI and OpenAI-compatible endpoints (vLLM, Ollama, llama.cpp's server, LM Studio).

Through the official `openai` client with `max_retries=0`: retries are ours (`transport`).
Requests run on one background event loop per process, so the per-endpoint concurrency
limit is shared by every episode and thread in the process, while planners keep a plain
synchronous `complete()`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from typing import Any

import openai

from coopbench.errors import CoopbenchError
from coopbench.llm.calllog import register_secret
from coopbench.llm.config import LLMConfig
from coopbench.llm.grammar import choice_grammar
from coopbench.llm.request import Reply, Request, estimate_prompt_tokens, estimate_tokens
from coopbench.llm.spec import ModelSpec
from coopbench.llm.transport import MalformedResponse, RetryPolicy, call_with_retries

OPENAI_BASE_URL = "https://api.openai.com/v1"
COMPAT_KEY_ENV = "OPENAI_COMPAT_API_KEY"
CONSTRAIN_MODES = ("grammar", "guided_choice", "none")


class _Loop:
    """One event loop in a daemon thread, shared by all remote models of the process."""

    _instance: _Loop | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="coopbench-llm",
                                       daemon=True)
        self.thread.start()
        self.semaphores: dict[str, asyncio.Semaphore] = {}
        self.clients: dict[tuple[str, str, float], openai.AsyncOpenAI] = {}

    @classmethod
    def get(cls) -> _Loop:
        with cls._lock:
            if cls._instance is None:
                cls._instance = _Loop()
            return cls._instance

    @classmethod
    def _forget(cls) -> None:
        """In a forked child the loop thread does not exist: start afresh on next use."""
        cls._instance = None
        cls._lock = threading.Lock()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    # The two below run on the loop thread only.
    def semaphore(self, endpoint: str, limit: int) -> asyncio.Semaphore:
        if endpoint not in self.semaphores:
            self.semaphores[endpoint] = asyncio.Semaphore(limit)
        return self.semaphores[endpoint]

    def client(self, base_url: str, api_key: str, timeout_s: float) -> openai.AsyncOpenAI:
        key = (base_url, hashlib.sha256(api_key.encode()).hexdigest(), timeout_s)
        if key not in self.clients:
            self.clients[key] = openai.AsyncOpenAI(
                base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_s
            )
        return self.clients[key]


os.register_at_fork(after_in_child=_Loop._forget)


class RemoteBackend:
    """Chat completions over HTTP; see the module docstring."""

    simulated = False
    cacheable = True

    def __init__(self, *, spec: ModelSpec, base_url: str, api_key: str, policy: RetryPolicy,
                 concurrency: int, constrain: str) -> None:
        self.spec = spec
        self.base_url = base_url
        self.model = spec.model
        self._api_key = api_key
        self.policy = policy
        self.concurrency = concurrency
        self.constrain = constrain
        self.model_id = f"{spec.scheme}:{base_url}#{spec.model}"
        openai_proper = spec.scheme == "openai"
        self._max_tokens_field = "max_completion_tokens" if openai_proper else "max_tokens"

    def __repr__(self) -> str:  # never show the key
        return f"RemoteBackend({self.model_id!r})"

    @classmethod
    def for_spec(cls, spec: ModelSpec, config: LLMConfig) -> RemoteBackend:
        if spec.scheme == "openai":  # OPENAI_BASE_URL: a proxy or gateway, as the SDK allows
            base_url = (os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL).rstrip("/")
            key = config.api_key(base_url, "OPENAI_API_KEY")
            if not key:
                raise CoopbenchError(
                    "openai: needs an API key: set OPENAI_API_KEY or add it to the LLM config "
                    "file (never on the command line)"
                )
            default_constrain = "none"  # OpenAI rejects unknown request fields
        else:
            base_url = spec.base_url
            key = config.api_key(base_url, COMPAT_KEY_ENV) or "no-key"
            default_constrain = "grammar"  # llama.cpp's server; others ignore the field
        register_secret(key)
        endpoint = config.endpoint(base_url)
        constrain = str(endpoint.get("constrain", default_constrain))
        if constrain not in CONSTRAIN_MODES:
            raise CoopbenchError(f"endpoint {base_url}: constrain must be one of {CONSTRAIN_MODES}")
        policy = RetryPolicy(
            max_attempts=config.max_attempts,
            timeout_s=float(endpoint.get("timeout_s", config.timeout_s)),
            total_timeout_s=config.total_timeout_s,
            backoff_s=config.backoff_s,
            backoff_max_s=config.backoff_max_s,
        )
        concurrency = int(endpoint.get("concurrency", config.concurrency))
        if concurrency < 1 or policy.max_attempts < 1 or policy.timeout_s <= 0:
            raise CoopbenchError("LLM config: concurrency, max_attempts, timeout_s must be > 0")
        return cls(spec=spec, base_url=base_url, api_key=key, policy=policy,
                   concurrency=concurrency, constrain=constrain)

    def generate(self, request: Request) -> Reply:
        return _Loop.get().run(self._generate(request))

    async def _generate(self, request: Request) -> Reply:
        loop = _Loop.get()
        client = loop.client(self.base_url, self._api_key, self.policy.timeout_s)
        semaphore = loop.semaphore(self.base_url, self.concurrency)
        kwargs = self._kwargs(request)

        async def attempt() -> Any:
            async with semaphore:  # a sliding window: held only while a request is in flight
                raw = await asyncio.wait_for(  # the whole attempt, not just each read
                    client.chat.completions.with_raw_response.create(**kwargs),
                    self.policy.timeout_s,
                )
                return _parse(raw)

        result, attempts, retries = await call_with_retries(
            attempt, self.policy, what=f"{self.spec.canonical()}", model=self.model,
            base_url=self.base_url,
        )
        text, model, usage = result
        return Reply(
            text=text,
            tokens_in=usage.get("prompt_tokens", estimate_prompt_tokens(request.messages)),
            tokens_out=usage.get("completion_tokens", estimate_tokens(text)),
            attempts=attempts,
            retries=retries,
            model=model or self.model,
            extra={"estimated_usage": not usage},
        )

    def _kwargs(self, request: Request) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "temperature": request.temperature,
            # OpenAI's newer models refuse `max_tokens`; most compatible servers know only it
            self._max_tokens_field: request.max_tokens,
        }
        if request.seed is not None or request.sample:
            blob = f"{request.seed}|{request.sample}".encode()
            kwargs["seed"] = int.from_bytes(hashlib.sha256(blob).digest()[:4], "little") >> 1
        if request.choices is not None and self.constrain != "none":
            longest = max(len(c) for c in request.choices)  # room for the longest choice
            kwargs[self._max_tokens_field] = max(request.max_tokens, longest // 2 + 4)
            extra = ({"grammar": choice_grammar(request.choices)} if self.constrain == "grammar"
                     else {"guided_choice": list(request.choices)})
            kwargs["extra_body"] = extra
        return kwargs


def _parse(raw: Any) -> tuple[str, str, dict[str, int]]:
    """(text, model, usage) from a raw HTTP response; a malformed body is transient."""
    try:
        body = json.loads(raw.http_response.text)
        choice = body["choices"][0]
        text = choice["message"].get("content") or ""
        usage = body.get("usage") or {}
        counts = {k: int(usage[k]) for k in ("prompt_tokens", "completion_tokens") if k in usage}
        return str(text), str(body.get("model") or ""), counts
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedResponse(f"malformed response body ({type(exc).__name__})") from None
