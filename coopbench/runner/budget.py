"""Spending limits and the LLM wrapper that enforces them inside a running episode.

What counts as spend: LLM calls that reached a model (cache hits are free), prompt +
completion tokens of those calls, and their cost. The matrix sums the spend of every finished
episode in the run directory; before each episode starts it hands the episode what is left,
and `MeteredLLM` refuses the call that would go past it (`BudgetExceeded`). That episode is
then abandoned, not recorded, so a resumed run plays it again from its start.

`EndpointSlots` caps concurrent calls to one endpoint across worker processes with lock files
(a sliding window: a call takes a free slot and frees it when done).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from coopbench.core.errors import CoopbenchError
from coopbench.core.types import EpisodeResult
from coopbench.runner.spec import Budget


class BudgetExceeded(CoopbenchError):
    """The matrix's LLM budget is spent; the run directory stays consistent and resumable."""


@dataclass
class Spend:
    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Spend) -> Spend:
        return Spend(self.calls + other.calls, self.tokens + other.tokens,
                     self.cost_usd + other.cost_usd)

    @classmethod
    def of(cls, episodes: Iterable[EpisodeResult]) -> Spend:
        total = cls()
        for e in episodes:
            total = total + cls(max(e.llm_queries - e.cache_hits, 0),
                                e.tokens_in + e.tokens_out, e.cost_usd)
        return total

    def exhausted(self, budget: Budget) -> str | None:
        """Why `budget` is used up by this spend, or None."""
        checks = (
            ("LLM calls", self.calls, budget.max_llm_calls),
            ("tokens", self.tokens, budget.max_tokens),
            ("dollars", self.cost_usd, budget.max_cost_usd),
        )
        for name, spent, limit in checks:
            if limit is not None and spent >= limit:
                return f"budget of {limit:g} {name} reached ({spent:g} spent)"
        return None

    def remaining(self, budget: Budget) -> Budget:
        def left(limit: float | None, spent: float) -> Any:
            return None if limit is None else max(limit - spent, 0)

        return Budget(
            max_llm_calls=left(budget.max_llm_calls, self.calls),
            max_tokens=left(budget.max_tokens, self.tokens),
            max_cost_usd=left(budget.max_cost_usd, self.cost_usd),
        )


class EndpointSlots:
    """At most `limit` concurrent calls per endpoint, shared by processes via lock files.

    A file lock is re-entrant within a process, so the slots this process holds are tracked
    here too: each concurrent caller, thread or process, gets a different slot.
    """

    def __init__(self, directory: Path, endpoint: str, limit: int) -> None:
        digest = hashlib.sha256(endpoint.encode()).hexdigest()[:12]
        directory.mkdir(parents=True, exist_ok=True)
        self.locks = [FileLock(str(directory / f"{digest}.{i}.lock"), thread_local=False)
                      for i in range(limit)]
        self._held: set[int] = set()
        self._mutex = threading.Lock()

    def acquire(self) -> Slot:
        while True:
            with self._mutex:
                for i, lock in enumerate(self.locks):
                    if i in self._held:
                        continue
                    try:
                        lock.acquire(timeout=0)
                    except Timeout:
                        continue
                    self._held.add(i)
                    return Slot(self, i)
            time.sleep(0.005)

    def _release(self, index: int) -> None:
        with self._mutex:
            self.locks[index].release()
            self._held.discard(index)


@dataclass
class Slot:
    slots: EndpointSlots
    index: int

    def release(self) -> None:
        self.slots._release(self.index)


class MeteredLLM:
    """Wraps a model: enforces an episode's share of the budget and the endpoint's slots."""

    def __init__(self, llm: Any, allowance: Budget | None, slots: EndpointSlots | None) -> None:
        self.llm = llm
        self.allowance = allowance
        self.slots = slots
        self.spent = Spend()

    def __getattr__(self, name: str) -> Any:  # spec, model_id, simulated, usage, ...
        return getattr(self.llm, name)

    def complete(self, messages: Any, **kwargs: Any) -> Any:
        reason = self._refusal()
        if reason:
            raise BudgetExceeded(f"LLM budget reached during an episode: {reason}")
        lock = self.slots.acquire() if self.slots is not None else None
        try:
            completion = self.llm.complete(messages, **kwargs)
        finally:
            if lock is not None:
                lock.release()
        if not completion.cached:
            usage = completion.usage
            self.spent = self.spent + Spend(1, usage.tokens_in + usage.tokens_out, usage.cost_usd)
        return completion

    def _refusal(self) -> str | None:
        """Why the next call would go past the allowance (calls strictly, tokens/$ once spent)."""
        allowance, spent = self.allowance, self.spent
        if allowance is None:
            return None
        if allowance.max_llm_calls is not None and spent.calls + 1 > allowance.max_llm_calls:
            return f"{allowance.max_llm_calls:g} calls left to this episode"
        if allowance.max_tokens is not None and spent.tokens >= allowance.max_tokens:
            return f"{allowance.max_tokens:g} tokens left to this episode"
        if allowance.max_cost_usd is not None and spent.cost_usd >= allowance.max_cost_usd:
            return f"${allowance.max_cost_usd:g} left to this episode"
        return None
