"""`Model`: the one front end every backend sits behind (implements the `LLM` protocol).

It does, once for all backends: the cache lookup, counting every call where it is made
(a cache hit is still a call, flagged `cached`), pricing, running totals, and the call log.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

from coopbench.core.errors import BadScores, CoopbenchError, CoopbenchWarning
from coopbench.core.types import Usage
from coopbench.llm.base import Completion, Message, Oracle, Scores
from coopbench.llm.cache import Entry, ResponseCache, cache_key
from coopbench.llm.calllog import CallLog, redact
from coopbench.llm.capabilities import Capabilities
from coopbench.llm.pricing import PriceTable
from coopbench.llm.request import Backend, Reply, Request, ScoreReply, ScoreRequest

_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "coopbench_llm_call_context", default=None
)


@contextlib.contextmanager
def call_context(**ids: Any) -> Iterator[None]:
    """Ids (cell, episode, ...) added to every call-log record made inside this block.

    Lets the runner label calls without planners passing its ids along; nested blocks merge.
    Context variables do not follow work handed to thread pools: pass `meta=` there.
    """
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **ids})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class Model:
    """A backend plus cache, accounting and logging. Thread-safe."""

    def __init__(
        self,
        backend: Backend,
        *,
        spec: str,
        price_name: str,
        prices: PriceTable | None = None,
        cache: ResponseCache | None = None,
        call_log: CallLog | None = None,
    ) -> None:
        self.backend = backend
        self.spec = spec
        self.model_id = backend.model_id
        self.simulated = backend.simulated
        self.price_name = price_name
        self.prices = prices or PriceTable()
        self.cache = cache if backend.cacheable else None
        self.call_log = call_log
        self.usage = Usage()  # everything this object answered, for run totals
        self.backend_calls = 0  # requests that reached the backend (cache misses)
        self.retries = 0  # failed attempts that were retried (transient errors)
        self._lock = threading.Lock()

    def capabilities(self, refresh: bool = False) -> Capabilities:
        """What the backend can do (declared, or probed once and cached for HTTP endpoints)."""
        ask = getattr(self.backend, "capabilities", None)
        if not callable(ask):
            return Capabilities(constrained=None, scoring="sampled")
        return ask(refresh=refresh)

    def complete(
        self,
        messages: list[Message],
        *,
        choices: list[str] | None = None,
        temperature: float = 0.0,
        max_tokens: int = 256,
        seed: int | None = None,
        sample: int = 0,
        oracle: Oracle | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Completion:
        request = _request(messages, choices, temperature, max_tokens, seed, sample, oracle)
        key = cache_key(self.model_id, request) if self.cache is not None else None
        start = time.perf_counter()
        entry = self._cache_get(key)
        cached = entry is not None
        reply: Reply | None = None
        if entry is None:
            try:
                reply = self.backend.generate(request)
            except Exception as exc:
                with self._lock:
                    self.retries += len(getattr(exc, "retries", []))
                self._log(request, meta, None, time.perf_counter() - start, False, key, exc)
                raise
            reply.text = redact(reply.text)  # a key a server echoes must not reach any file
            entry = Entry(reply.text, reply.tokens_in, reply.tokens_out,
                          reply.model or self.model_id, time.perf_counter() - start)
            self._cache_put(key, entry)
        latency = time.perf_counter() - start
        usage = Usage(
            calls=1,
            cache_hits=int(cached),
            tokens_in=entry.tokens_in,
            tokens_out=entry.tokens_out,
            cost_usd=self.prices.cost(self.price_name, entry.tokens_in, entry.tokens_out),
        )
        completion = Completion(
            text=entry.text,
            usage=usage,
            cached=cached,
            latency_s=latency,
            model=entry.model,
            attempts=reply.attempts if reply else 0,
            extra=dict(reply.extra) if reply else {"original_latency_s": entry.latency_s},
        )
        if reply and reply.retries:
            completion.extra["retries"] = reply.retries
        if self.simulated:
            completion.extra["simulated"] = True
        with self._lock:
            self.usage = self.usage + usage
            self.backend_calls += int(not cached)
            self.retries += len(reply.retries) if reply else 0
        self._log(request, meta, completion, latency, cached, key, None)
        return completion

    def score(
        self,
        messages: list[Message],
        candidates: list[str],
        *,
        seed: int | None = None,
        oracle: Oracle | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Scores:
        """log P(candidate | messages) per candidate: one scoring pass, cached like a reply.

        A backend's answer that is not one finite-or-−inf number per candidate is a
        `CoopbenchError` (counted in the call log), never a silently wrong ranking.
        """
        _request(messages, None, 0.0, 1, seed, 0, oracle)  # the same message checks
        if not candidates:
            raise ValueError("candidates must not be empty")
        request = ScoreRequest(
            messages=tuple({"role": str(m["role"]), "content": str(m["content"])}
                           for m in messages),
            candidates=tuple(str(c) for c in candidates),
            oracle=oracle,
            seed=seed,
        )
        key = cache_key(self.model_id, request) if self.cache is not None else None
        start = time.perf_counter()
        entry = self._cache_get(key)
        cached = entry is not None
        reply: ScoreReply | None = None
        if entry is None:
            try:
                reply = self.backend.score(request)
                _check_scores(reply.logprobs, len(request.candidates), self.spec)
            except Exception as exc:
                with self._lock:
                    self.retries += len(getattr(exc, "retries", []))
                self._log(request, meta, None, time.perf_counter() - start, False, key, exc)
                raise
            payload = {"logprobs": [float(x) for x in reply.logprobs], "method": reply.method,
                       "calls": reply.calls}
            entry = Entry(json.dumps(payload), reply.tokens_in, reply.tokens_out,
                          reply.model or self.model_id, time.perf_counter() - start)
            self._cache_put(key, entry)
        payload = json.loads(entry.text)
        latency = time.perf_counter() - start
        usage = Usage(
            calls=int(payload.get("calls", 1)),
            cache_hits=int(cached),
            tokens_in=entry.tokens_in,
            tokens_out=entry.tokens_out,
            cost_usd=self.prices.cost(self.price_name, entry.tokens_in, entry.tokens_out),
        )
        scores = Scores(
            logprobs=tuple(float(x) for x in payload["logprobs"]),
            usage=usage,
            method=str(payload.get("method", "logprobs")),
            cached=cached,
            latency_s=latency,
            model=entry.model,
            extra=dict(reply.extra) if reply else {"original_latency_s": entry.latency_s},
        )
        if reply and reply.retries:  # the call log reads them from here, as for `complete`
            scores.extra["retries"] = reply.retries
        if self.simulated:
            scores.extra["simulated"] = True
        with self._lock:
            self.usage = self.usage + usage
            self.backend_calls += int(not cached)
            self.retries += len(reply.retries) if reply else 0
        self._log(request, meta, scores, latency, cached, key, None)
        return scores

    def _cache_get(self, key: str | None) -> Entry | None:
        if self.cache is None or key is None:
            return None
        try:
            return self.cache.get(key)
        except sqlite3.Error as exc:  # a broken cache must not stop a run: it only costs calls
            _warn_cache(self.cache.path, exc)
            return None

    def _cache_put(self, key: str | None, entry: Entry) -> None:
        if self.cache is None or key is None:
            return
        try:
            self.cache.put(key, self.model_id, entry)
        except sqlite3.Error as exc:
            _warn_cache(self.cache.path, exc)

    def _log(
        self,
        request: Request | ScoreRequest,
        meta: dict[str, Any] | None,
        completion: Completion | Scores | None,
        latency: float,
        cached: bool,
        key: str | None,
        error: BaseException | None,
    ) -> None:
        if self.call_log is None:
            return
        params = request.output_params()
        record: dict[str, Any] = {
            "ts": time.time(),
            "spec": self.spec,
            "model_id": self.model_id,
            "simulated": self.simulated,
            **(_CONTEXT.get() or {}),
            **(meta or {}),
            "request": params,
            "response": _response(completion),
            "model": completion.model if completion else None,
            "usage": completion.usage.to_json() if completion else None,
            "latency_s": round(latency, 6),
            "cache_hit": cached,
            "cache_key": key,
            "attempts": (getattr(completion, "attempts", 1) if completion
                         else getattr(error, "attempts", 1)),
            "retries": (completion.extra.get("retries", []) if completion
                        else getattr(error, "retries", [])),
            "error": _one_line(error) if error else None,
        }
        if request.oracle is not None:
            record["oracle"] = {"expert": request.oracle.expert}
        if completion:
            details = {k: v for k, v in completion.extra.items()
                       if k not in ("retries", "simulated")}
            if details:  # finish reason, llama.cpp's evaluated tokens, the sim draw, ...
                record["details"] = details
        self.call_log.append(record)


def _request(
    messages: list[Message],
    choices: list[str] | None,
    temperature: float,
    max_tokens: int,
    seed: int | None,
    sample: int,
    oracle: Oracle | None,
) -> Request:
    if not messages:
        raise ValueError("messages must not be empty")
    for m in messages:
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"each message needs 'role' and 'content', got {m!r}")
    if choices is not None and not choices:
        raise ValueError("choices must not be empty (pass None for free text)")
    return Request(
        messages=tuple({"role": str(m["role"]), "content": str(m["content"])} for m in messages),
        choices=tuple(choices) if choices is not None else None,
        temperature=float(temperature),
        max_tokens=int(max_tokens),
        seed=seed,
        sample=int(sample),
        oracle=oracle,
    )


def _response(answer: Completion | Scores | None) -> Any:
    if answer is None:
        return None
    if isinstance(answer, Scores):
        return {"logprobs": [round(x, 4) for x in answer.logprobs], "method": answer.method}
    return answer.text


def _check_scores(logprobs: Any, n: int, spec: str) -> None:
    """One log-probability (finite or −inf, never above 0 by more than rounding) per candidate."""
    try:
        values = [float(x) for x in logprobs]
    except (TypeError, ValueError):
        raise BadScores(f"{spec}: scores are not numbers: {str(logprobs)[:80]}") from None
    if len(values) != n:
        raise BadScores(f"{spec}: {len(values)} scores for {n} candidates")
    bad = [x for x in values if math.isnan(x) or x == math.inf or x > 1e-3]
    if bad:
        raise BadScores(f"{spec}: scores are not log-probabilities (e.g. {bad[0]})")


_CACHE_WARNED: set[str] = set()  # one notice per cache file and process, not one per call


def _warn_cache(path: object, exc: Exception) -> None:
    if str(path) in _CACHE_WARNED:
        return
    _CACHE_WARNED.add(str(path))
    warnings.warn(f"LLM cache {path} unusable, answering without it: {exc}", CoopbenchWarning,
                  stacklevel=3)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    name = "" if isinstance(error, CoopbenchError) else f"{type(error).__name__}: "
    return name + (text[0] if text else "")
