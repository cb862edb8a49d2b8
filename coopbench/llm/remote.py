"""OpenAI and OpenAI-compatible endpoints (vLLM, Ollama, llama.cpp's server, LM Studio).

Through the official `openai` client with `max_retries=0`: retries are ours (`transport`).
Requests run on one background event loop per process, so the per-endpoint concurrency
limit is shared by every episode and thread in the process, while planners keep a plain
synchronous `complete()`.

Scoring asks the legacy completions endpoint to echo the prompt's token log-probabilities
(one request, one prompt per candidate). An endpoint that refuses that, or answers without
log-probabilities, is remembered and scored from k sampled chat replies instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import openai

from coopbench.core.errors import CoopbenchError
from coopbench.llm.calllog import register_secret
from coopbench.llm.config import LLMConfig
from coopbench.llm.grammar import choice_grammar
from coopbench.llm.request import (
    Reply,
    Request,
    ScoreReply,
    ScoreRequest,
    estimate_prompt_tokens,
    estimate_tokens,
)
from coopbench.llm.scoring import (
    SCORE_TEMPLATES,
    end_marker,
    render_prefix,
    sampled_logprobs,
    span_logprob,
)
from coopbench.llm.spec import ModelSpec
from coopbench.llm.transport import MalformedResponse, RetryPolicy, call_with_retries

OPENAI_BASE_URL = "https://api.openai.com/v1"
COMPAT_KEY_ENV = "OPENAI_COMPAT_API_KEY"
CONSTRAIN_MODES = ("grammar", "guided_choice", "none")
DEFAULT_SCORE_SAMPLES = 8
# what a server without (echoing) legacy completions answers; 401/403 and 5xx are not this
_NO_SCORING_STATUS = frozenset({400, 404, 405, 422, 501})
T = TypeVar("T")


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


class _NoLogprobs(Exception):
    """The endpoint cannot score from log-probabilities: it refused, or answered without."""


class RemoteBackend:
    """Chat completions over HTTP; see the module docstring."""

    simulated = False
    cacheable = True

    def __init__(self, *, spec: ModelSpec, base_url: str, api_key: str, policy: RetryPolicy,
                 concurrency: int, constrain: str, score_template: str = "chatml",
                 score_samples: int = DEFAULT_SCORE_SAMPLES) -> None:
        self.spec = spec
        self.base_url = base_url
        self.model = spec.model
        self._api_key = api_key
        self.policy = policy
        self.concurrency = concurrency
        self.constrain = constrain
        self.score_template = score_template
        self.score_samples = score_samples
        self._no_logprobs: str | None = None  # why, once the endpoint showed it has none
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
        score_template = str(endpoint.get("score_template", "chatml"))
        if score_template not in SCORE_TEMPLATES:
            raise CoopbenchError(
                f"endpoint {base_url}: score_template must be one of {SCORE_TEMPLATES}"
            )
        score_samples = endpoint.get("score_samples", DEFAULT_SCORE_SAMPLES)
        if type(score_samples) is not int or score_samples < 1:  # bool is not a count
            raise CoopbenchError(f"endpoint {base_url}: score_samples must be an integer >= 1")
        return cls(spec=spec, base_url=base_url, api_key=key, policy=policy,
                   concurrency=concurrency, constrain=constrain, score_template=score_template,
                   score_samples=score_samples)

    def generate(self, request: Request) -> Reply:
        return _Loop.get().run(self._generate(request))

    async def _call(
        self, send: Callable[[openai.AsyncOpenAI], Awaitable[Any]], parse: Callable[[Any], T]
    ) -> tuple[T, int, list[dict[str, Any]]]:
        """One request under the endpoint's semaphore, timeout and retries; (parsed, attempts,
        retries). `parse` raising `MalformedResponse` makes the attempt transient."""
        loop = _Loop.get()
        client = loop.client(self.base_url, self._api_key, self.policy.timeout_s)
        semaphore = loop.semaphore(self.base_url, self.concurrency)

        async def attempt() -> T:
            async with semaphore:  # a sliding window: held only while a request is in flight
                raw = await asyncio.wait_for(  # the whole attempt, not just each read
                    send(client), self.policy.timeout_s
                )
                return parse(raw)

        return await call_with_retries(
            attempt, self.policy, what=f"{self.spec.canonical()}", model=self.model,
            base_url=self.base_url,
        )

    async def _generate(self, request: Request) -> Reply:
        kwargs = self._kwargs(request)
        result, attempts, retries = await self._call(
            lambda client: client.chat.completions.with_raw_response.create(**kwargs), _parse
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

    def score(self, request: ScoreRequest) -> ScoreReply:
        return _Loop.get().run(self._score(request))

    async def _score(self, request: ScoreRequest) -> ScoreReply:
        """Log-probabilities if the endpoint has them; once it showed it has none, samples."""
        if self._no_logprobs is None:
            try:
                return await self._score_logprobs(request)
            except _NoLogprobs as exc:  # not retried: the endpoint lacks the feature
                self._no_logprobs = str(exc)
        return await self._score_sampled(request)

    async def _score_logprobs(self, request: ScoreRequest) -> ScoreReply:
        prefix = render_prefix(request.messages, self.score_template)
        prompts = [prefix + c + end_marker(self.score_template) for c in request.candidates]
        kwargs = {"model": self.model, "prompt": prompts, "echo": True, "logprobs": 1,
                  "max_tokens": 1, "temperature": 0}  # 1 token: some servers refuse 0

        async def send(client: openai.AsyncOpenAI) -> Any:
            try:
                return await client.completions.with_raw_response.create(**kwargs)
            except openai.APIStatusError as exc:
                if exc.status_code in _NO_SCORING_STATUS:
                    raise _NoLogprobs(f"HTTP {exc.status_code} from /completions") from None
                raise

        def parse(raw: Any) -> tuple[list[float], str, dict[str, int]]:
            return _parse_scores(raw, len(prefix), prompts, self.spec.canonical())

        (logprobs, model, usage), attempts, retries = await self._call(send, parse)
        return ScoreReply(
            logprobs=logprobs,
            tokens_in=usage.get("prompt_tokens", sum(estimate_tokens(p) for p in prompts)),
            tokens_out=usage.get("completion_tokens", len(prompts)),
            method="logprobs",
            calls=1,
            attempts=attempts,
            retries=retries,
            model=model or self.model,
            extra={"estimated_usage": not usage, "score_template": self.score_template},
        )

    async def _score_sampled(self, request: ScoreRequest) -> ScoreReply:
        """k replies constrained to the candidates at T = 1, counted: k query rounds."""
        asks = [Request(messages=request.messages, choices=request.candidates, temperature=1.0,
                        sample=i, seed=request.seed) for i in range(self.score_samples)]
        replies = await asyncio.gather(*(self._generate(a) for a in asks))
        logprobs, unmatched = sampled_logprobs([r.text for r in replies], request.candidates)
        return ScoreReply(
            logprobs=logprobs,
            tokens_in=sum(r.tokens_in for r in replies),
            tokens_out=sum(r.tokens_out for r in replies),
            method="sampled",
            calls=len(replies),
            attempts=sum(r.attempts for r in replies),
            retries=[{**retry, "sample": i} for i, r in enumerate(replies) for retry in r.retries],
            model=replies[0].model,
            extra={"samples": len(replies), "unmatched": unmatched,
                   "no_logprobs": self._no_logprobs,
                   "estimated_usage": any(r.extra.get("estimated_usage") for r in replies)},
        )


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


def _parse_scores(raw: Any, start: int, prompts: list[str],
                  what: str) -> tuple[list[float], str, dict[str, int]]:
    """(log P per candidate, model, usage) from an echoed completions body.

    Broken JSON is transient (`MalformedResponse`); a body without log-probabilities means
    the endpoint has none (`_NoLogprobs`); log-probabilities that cannot be the prompts
    asked for are a permanent `CoopbenchError`, never a silently wrong ranking.
    """
    try:
        body = json.loads(raw.http_response.text)
    except (ValueError, AttributeError) as exc:
        raise MalformedResponse(f"malformed response body ({type(exc).__name__})") from None
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list):
        raise MalformedResponse("malformed response body (no choices)")
    by_index = {c["index"]: _echoed(c) for c in choices
                if isinstance(c, dict) and type(c.get("index")) is int}
    if len(choices) != len(prompts) or set(by_index) != set(range(len(prompts))):
        raise CoopbenchError(f"{what}: unusable scores: {len(choices)} completion choices "
                             f"for {len(prompts)} candidates")
    try:
        logprobs = [span_logprob(*by_index[i], start, len(p)) for i, p in enumerate(prompts)]
    except ValueError as exc:
        raise CoopbenchError(f"{what}: unusable scores: {exc}") from None
    usage = body.get("usage") or {}
    try:
        counts = {k: int(usage[k]) for k in ("prompt_tokens", "completion_tokens") if k in usage}
    except (TypeError, ValueError):
        counts = {}
    return logprobs, str(body.get("model") or ""), counts


def _echoed(choice: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """(token_logprobs, text_offset) of one choice; `_NoLogprobs` where they are absent."""
    logprobs = choice.get("logprobs")
    token_logprobs = logprobs.get("token_logprobs") if isinstance(logprobs, dict) else None
    text_offset = logprobs.get("text_offset") if isinstance(logprobs, dict) else None
    if not isinstance(token_logprobs, list) or not isinstance(text_offset, list):
        raise _NoLogprobs("no echoed log-probabilities from /completions")
    return token_logprobs, text_offset
