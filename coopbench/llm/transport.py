"""Retries for remote calls: transient failures only, jittered exponential backoff.

Transient: connection errors, timeouts (per attempt), HTTP 408/409/429/5xx and malformed
response bodies. A `Retry-After` (or `retry-after-ms`) header sets the wait when present.
Permanent: 401/403 (authentication), 404 (unknown model or wrong URL) and other 4xx —
these raise `CoopbenchError` at once with one line and no retry.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from coopbench.core.errors import CoopbenchError
from coopbench.llm.calllog import redact

T = TypeVar("T")
RETRY_AFTER_CAP_S = 300.0
_TRANSIENT_STATUS = {408, 409, 429}


class MalformedResponse(Exception):
    """The server answered 2xx with a body that is not a chat completion."""


class LLMCallError(CoopbenchError):
    """A remote call failed for good; carries the attempts for the call log."""

    def __init__(self, message: str, attempts: int = 1, retries: list | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.retries = retries or []


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    timeout_s: float = 60.0  # per attempt
    total_timeout_s: float = 600.0
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (MalformedResponse, asyncio.TimeoutError, openai.APIConnectionError,
                        openai.APIResponseValidationError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _TRANSIENT_STATUS or exc.status_code >= 500
    return False


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait, from `retry-after-ms` or `Retry-After`."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    if headers.get("retry-after-ms"):
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, when.timestamp() - time.time()) if when else None


def describe(exc: BaseException, timeout_s: float) -> str:
    """A short label of a failure for logs: 'HTTP 429', 'timeout after 2.0 s', ..."""
    if isinstance(exc, asyncio.TimeoutError | openai.APITimeoutError):
        return f"timeout after {timeout_s:g} s"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    return str(exc) or type(exc).__name__


def _permanent(exc: BaseException, what: str, model: str, base_url: str) -> CoopbenchError:
    status = getattr(exc, "status_code", None)
    detail = _server_message(exc)
    if status in (401, 403):
        return CoopbenchError(
            f"{what}: authentication failed (HTTP {status}) at {base_url}: check the API key "
            f"in the environment or the LLM config file{detail}"
        )
    if status == 404:
        return CoopbenchError(
            f"{what}: unknown model {model!r} or wrong base URL (HTTP 404 from {base_url}){detail}"
        )
    return CoopbenchError(f"{what}: request refused (HTTP {status}) by {base_url}{detail}")


def _server_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    if not message:
        return ""
    return ": " + redact(str(message).strip().splitlines()[0][:200])  # servers echo keys


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str,
    model: str,
    base_url: str,
) -> tuple[T, int, list[dict[str, Any]]]:
    """Run `attempt` until it succeeds; returns (result, attempts, one record per retry)."""
    retries: list[dict[str, Any]] = []
    backoff = wait_random_exponential(multiplier=policy.backoff_s, max=policy.backoff_max_s)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = retry_after_s(exc) if exc else None
        return min(asked, RETRY_AFTER_CAP_S) if asked is not None else backoff(state)

    def record(state: RetryCallState) -> None:  # called only when a retry really follows
        exc = state.outcome.exception() if state.outcome else None
        retries.append({"attempt": state.attempt_number,
                        "error": describe(exc, policy.timeout_s) if exc else "",
                        "wait_s": round(state.next_action.sleep if state.next_action else 0, 3),
                        "retry_after": retry_after_s(exc) is not None if exc else False})

    retrying = AsyncRetrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(policy.max_attempts) | stop_after_delay(policy.total_timeout_s),
        wait=wait,
        before_sleep=record,
        reraise=True,
    )
    attempts = 0
    try:
        async for trial in retrying:
            with trial:
                attempts = trial.retry_state.attempt_number
                result = await attempt()
    except Exception as exc:
        if is_transient(exc):
            raise LLMCallError(
                f"{what}: gave up after {attempts} attempt(s), last error: "
                f"{describe(exc, policy.timeout_s)} (a run keeps what it finished: run the same "
                "command again to resume)", attempts, retries,
            ) from None
        if isinstance(exc, openai.APIStatusError):
            raise _as_call_error(_permanent(exc, what, model, base_url), attempts,
                                 retries) from None
        raise
    return result, attempts, retries


def _as_call_error(error: CoopbenchError, attempts: int, retries: list) -> LLMCallError:
    return LLMCallError(str(error), attempts, retries)
