"""OpenAI and OpenAI-compatible endpoints (vLLM, Ollama, llama.cpp's server, LM Studio).

Through the official `openai` client with `max_retries=0`: retries are ours (`transport`).
Requests run on one background event loop per process, so the per-endpoint concurrency
limit is shared by every episode and thread in the process, while planners keep a plain
synchronous `complete()`.

What the endpoint can do (`capabilities`) is decided up front, never guessed from errors
mid-run: the LLM config's `constrain:`/`scoring:` for the endpoint, else what a probe found
(`coopbench.llm.probe`, remembered by `coopbench.llm.capcache`). Choices then travel in the
endpoint's constrained-choice form (`coopbench.llm.forms`) or not at all (free text); scores
come from echoed prompt log-probabilities for all candidates in one request (`batched`),
one request per candidate sent together (`per-prompt`), or k sampled replies (`sampled`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import openai

from coopbench.core.errors import CoopbenchError, CoopbenchWarning
from coopbench.llm import capcache, forms, probe
from coopbench.llm.calllog import redact, register_secret
from coopbench.llm.capabilities import CONSTRAIN_FORMS, Capabilities
from coopbench.llm.config import LLMConfig
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
CONSTRAIN_MODES = (*CONSTRAIN_FORMS, "none")
SCORING_MODES = ("batched", "per-prompt", "sampled")
DEFAULT_SCORE_SAMPLES = 8
T = TypeVar("T")
_NOTIFIED: set[str] = set()  # endpoints whose missing capabilities were told, per process


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
                 concurrency: int, constrain: str | None = None, scoring: str | None = None,
                 score_template: str = "chatml",
                 score_samples: int = DEFAULT_SCORE_SAMPLES) -> None:
        self.spec = spec
        self.base_url = base_url
        self.model = spec.model
        self._api_key = api_key
        self.policy = policy
        self.concurrency = concurrency
        self.constrain = constrain  # the LLM config's choice, or None: probe
        self.scoring = scoring  # likewise
        self.score_template = score_template
        self.score_samples = score_samples
        self._caps: Capabilities | None = None
        self._caps_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self.part_sources: dict[str, str] = {}  # per capability: config, probed or cache
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
        else:
            base_url = spec.base_url
            key = config.api_key(base_url, COMPAT_KEY_ENV) or "no-key"
        register_secret(key)
        endpoint = config.endpoint(base_url)
        constrain = endpoint.get("constrain")
        if constrain is not None and constrain not in CONSTRAIN_MODES:
            raise CoopbenchError(f"endpoint {base_url}: constrain must be one of "
                                 f"{', '.join(CONSTRAIN_MODES)}")
        scoring = endpoint.get("scoring")
        if scoring is not None and scoring not in SCORING_MODES:
            raise CoopbenchError(f"endpoint {base_url}: scoring must be one of "
                                 f"{', '.join(SCORING_MODES)}")
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
                   concurrency=concurrency, constrain=constrain, scoring=scoring,
                   score_template=score_template, score_samples=score_samples)

    # -- capabilities ---------------------------------------------------------------------

    def capabilities(self, refresh: bool = False) -> Capabilities:
        """What this endpoint can do: the LLM config's `constrain:`/`scoring:` first, else
        what the capability cache remembers (fresh within `capcache.TTL_S`), else a probe.
        `refresh=True` probes again (a runner does so once at a run's start)."""
        return _Loop.get().run(self._capabilities(refresh))

    async def _capabilities(self, refresh: bool = False) -> Capabilities:
        if self._caps is not None and not refresh:
            return self._caps
        async with self._lock():  # one probe at a time, however many calls are waiting
            if self._caps is None or refresh:
                self._caps = await self._resolve(refresh)
                self._notify(self._caps)
            return self._caps

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()  # a forked child runs a new loop: a new lock
        if self._caps_lock is None or self._caps_lock[0] is not loop:
            self._caps_lock = (loop, asyncio.Lock())
        return self._caps_lock[1]

    async def _resolve(self, refresh: bool) -> Capabilities:
        values: dict[str, str | None] = {}
        notes: list[str] = []
        self.part_sources = {}
        if self.constrain is not None:
            values["constrained"] = None if self.constrain == "none" else self.constrain
            self.part_sources["constrained"] = "config"
            if self.constrain == "none":
                notes.append("constrained choice: off in the LLM config (constrain: none)")
        if self.scoring is not None:
            values["scoring"] = self.scoring
            self.part_sources["scoring"] = "config"
        needed = [part for part in probe.PARTS if part not in values]
        source, probed_at = "config", None
        if needed:
            found = {} if refresh else capcache.read(self.base_url, self.model)
            source = "cache"
            if not set(needed) <= set(found):
                found = await probe.probe_parts(_ProbeTarget(self), needed)
                capcache.write(self.base_url, self.model, found)
                source = "probed"
            for part in needed:
                values[part] = found[part].value
                notes.extend(found[part].notes)
                self.part_sources[part] = source
            probed_at = min(found[part].probed_at for part in needed)
        return Capabilities(constrained=values["constrained"],
                            scoring=values["scoring"] or "sampled", source=source,
                            probed_at=probed_at, notes=tuple(notes))

    def _notify(self, caps: Capabilities) -> None:
        """One line per process and endpoint where a probed capability is missing and the
        backend falls back (free text, sampled scores); a config choice is not news."""
        missing = []
        if caps.constrained is None and self.part_sources.get("constrained") != "config":
            missing.append("no constrained choice: replies are free text")
        if caps.scoring == "sampled" and self.part_sources.get("scoring") != "config":
            missing.append(f"no usable prompt log-probabilities: scores come from "
                           f"{self.score_samples} sampled replies")
        if not missing or self.model_id in _NOTIFIED:
            return
        _NOTIFIED.add(self.model_id)
        warnings.warn(f"{self.spec.canonical()}: {'; '.join(missing)} (`coopbench llm check` "
                      "says why)", CoopbenchWarning, stacklevel=2)

    # -- requests -------------------------------------------------------------------------

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
        form = None
        if request.choices is not None:
            form = (await self._capabilities()).constrained
        kwargs = self._kwargs(request, form)
        result, attempts, retries = await self._call(
            lambda client: client.chat.completions.with_raw_response.create(**kwargs), _parse
        )
        text, model, usage = result
        if form is not None:
            text = forms.decode_choice(form, text)
        return Reply(
            text=text,
            tokens_in=usage.get("prompt_tokens", estimate_prompt_tokens(request.messages)),
            tokens_out=usage.get("completion_tokens", estimate_tokens(text)),
            attempts=attempts,
            retries=retries,
            model=model or self.model,
            extra={"estimated_usage": not usage},
        )

    def _kwargs(self, request: Request, form: str | None) -> dict[str, Any]:
        """The chat request: `choices` in the endpoint's form `form` (None: free text)."""
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "temperature": request.temperature,
            # OpenAI's newer models refuse `max_tokens`; most compatible servers know only it
            self._max_tokens_field: request.max_tokens,
            "seed": request.sampling_seed(),  # what the embedded model samples with
        }
        if request.choices is not None and form is not None:
            kwargs[self._max_tokens_field] = forms.max_tokens(form, request.choices,
                                                              request.max_tokens)
            kwargs.update(forms.choice_fields(form, request.choices))
        return kwargs

    def score(self, request: ScoreRequest) -> ScoreReply:
        return _Loop.get().run(self._score(request))

    async def _score(self, request: ScoreRequest) -> ScoreReply:
        """In the endpoint's scoring form, decided up front (`capabilities`)."""
        caps = await self._capabilities()
        if caps.scoring == "batched":
            return await self._score_batched(request)
        if caps.scoring == "per-prompt":
            return await self._score_per_prompt(request)
        why = "; ".join(n for n in caps.notes if n.startswith("scoring")) or (
            f"scoring: {caps.scoring} ({caps.source})")
        return await self._score_sampled(request, why)

    def _score_prompts(self, request: ScoreRequest) -> tuple[str, list[str]]:
        prefix = render_prefix(request.messages, self.score_template)
        return prefix, [prefix + c + end_marker(self.score_template) for c in request.candidates]

    async def _echo(self, prompt: str | list[str], prefix: str,
                    prompts: list[str]) -> tuple[tuple[list[float], str, dict[str, int]], int,
                                                 list[dict[str, Any]]]:
        """One echoing /completions request for `prompts` (sent as `prompt`)."""
        kwargs = {"model": self.model, "prompt": prompt, "echo": True, "logprobs": 1,
                  "max_tokens": 1, "temperature": 0}  # 1 token: some servers refuse 0

        def parse(raw: Any) -> tuple[list[float], str, dict[str, int]]:
            return _parse_scores(raw, len(prefix), prompts, self.spec.canonical())

        return await self._call(
            lambda client: client.completions.with_raw_response.create(**kwargs), parse)

    async def _score_batched(self, request: ScoreRequest) -> ScoreReply:
        prefix, prompts = self._score_prompts(request)
        (logprobs, model, usage), attempts, retries = await self._echo(prompts, prefix, prompts)
        return ScoreReply(
            logprobs=logprobs,
            tokens_in=usage.get("prompt_tokens", sum(estimate_tokens(p) for p in prompts)),
            tokens_out=usage.get("completion_tokens", len(prompts)),
            method="logprobs",
            calls=1,
            attempts=attempts,
            retries=retries,
            model=model or self.model,
            extra={"estimated_usage": not usage, "score_template": self.score_template,
                   "scoring": "batched"},
        )

    async def _score_per_prompt(self, request: ScoreRequest) -> ScoreReply:
        """One request per candidate, sent together (the endpoint semaphore limits them):
        the same log-probabilities as `batched`, so still one query (`calls == 1`)."""
        prefix, prompts = self._score_prompts(request)
        results = await asyncio.gather(*(self._echo(p, prefix, [p]) for p in prompts))
        usages = [usage for (_, _, usage), _, _ in results]
        estimated = not all(usages)
        return ScoreReply(
            logprobs=[lps[0] for (lps, _, _), _, _ in results],
            tokens_in=sum(u.get("prompt_tokens", estimate_tokens(p))
                          for u, p in zip(usages, prompts, strict=True)),
            tokens_out=sum(u.get("completion_tokens", 1) for u in usages),
            method="logprobs",
            calls=1,
            attempts=sum(attempts for _, attempts, _ in results),
            retries=[{**retry, "candidate": i} for i, (_, _, retries) in enumerate(results)
                     for retry in retries],
            model=results[0][0][1] or self.model,
            extra={"estimated_usage": estimated, "score_template": self.score_template,
                   "scoring": "per-prompt", "requests": len(prompts)},
        )

    async def _score_sampled(self, request: ScoreRequest, why: str) -> ScoreReply:
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
            extra={"samples": len(replies), "unmatched": unmatched, "no_logprobs": why,
                   "estimated_usage": any(r.extra.get("estimated_usage") for r in replies)},
        )


class _ProbeTarget:
    """The probe's requests through a backend's client, semaphore and retries; a status
    that may mean "no such feature" comes back as `probe.Refused`, not retried."""

    def __init__(self, backend: RemoteBackend) -> None:
        self.backend = backend

    async def _send(self, create: Callable[[openai.AsyncOpenAI], Awaitable[Any]]) -> Any:
        def parse(raw: Any) -> Any:  # a broken body: asked again once, not retried 6 times
            try:
                return json.loads(raw.http_response.text)
            except (ValueError, AttributeError) as exc:
                raise probe.Refused(probe.MALFORMED, type(exc).__name__) from None

        async def send(client: openai.AsyncOpenAI) -> Any:
            try:
                return await create(client)
            except openai.APIStatusError as exc:
                if exc.status_code in probe.REFUSAL_STATUS:
                    raise probe.Refused(exc.status_code, _message(exc)) from None
                raise

        body, _, _ = await self.backend._call(send, parse)
        return body

    async def chat(self, messages: Any, max_tokens: int, fields: dict[str, Any]) -> str:
        b = self.backend
        kwargs = {"model": b.model, "messages": [dict(m) for m in messages], "temperature": 0,
                  b._max_tokens_field: max_tokens, **fields}
        body = await self._send(lambda c: c.chat.completions.with_raw_response.create(**kwargs))
        try:
            return str(body["choices"][0]["message"].get("content") or "")
        except (KeyError, IndexError, TypeError, AttributeError):
            return ""  # a 2xx that is not a chat completion: the field did nothing usable

    async def completions(self, prompt: str | list[str]) -> dict[str, Any]:
        kwargs = {"model": self.backend.model, "prompt": prompt, "echo": True, "logprobs": 1,
                  "max_tokens": 1, "temperature": 0}
        return await self._send(lambda c: c.completions.with_raw_response.create(**kwargs))


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    return redact(str(error.get("message") or "").strip()) if isinstance(error, dict) else ""


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

    Broken JSON is transient (`MalformedResponse`); log-probabilities that are absent or
    cannot be the prompts asked for are a permanent `CoopbenchError`, never a silently
    wrong ranking.
    """
    try:
        body = json.loads(raw.http_response.text)
    except (ValueError, AttributeError) as exc:
        raise MalformedResponse(f"malformed response body ({type(exc).__name__})") from None
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list):
        raise MalformedResponse("malformed response body (no choices)")
    try:
        by_index = {c["index"]: _echoed(c) for c in choices
                    if isinstance(c, dict) and type(c.get("index")) is int}
    except ValueError as exc:
        raise CoopbenchError(f"{what}: unusable scores: {exc}") from None
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
    """(token_logprobs, text_offset) of one choice; `CoopbenchError` where they are absent
    (the probe found them: an answer without them now is a broken answer)."""
    logprobs = choice.get("logprobs")
    token_logprobs = logprobs.get("token_logprobs") if isinstance(logprobs, dict) else None
    text_offset = logprobs.get("text_offset") if isinstance(logprobs, dict) else None
    if not isinstance(token_logprobs, list) or not isinstance(text_offset, list):
        raise ValueError("no echoed log-probabilities")
    return token_logprobs, text_offset
