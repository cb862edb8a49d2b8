"""The LLM contract every planner and the credit-assignment code call through.

Backends (embedded llama.cpp, OpenAI-compatible HTTP, simulated) implement `LLM`;
`coopbench.llm.make(spec, call_log=...)` builds one from a model spec string whose scheme
(`local`, `openai`, `openai-compat`, `sim`, or a plug-in's) names an entry of the backend
registry, `coopbench.llm.backends`.

`llm/` never imports `envs/`: the simulated model answers from an `Oracle` that the
calling planner builds from the env's expert and hands over with each request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from coopbench.core.types import Usage

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


@dataclass(frozen=True)
class Oracle:
    """What a simulated LLM answers from, built by the caller for one request.

    `expert` is the reply a perfect model would give, already in the caller's reply format;
    `alternatives` are other well-formed replies (e.g. random legal actions) that a noisy
    simulated model picks instead with probability `noise`. `margin`, when given, is how
    clear-cut the expert answer is (e.g. a progress difference): a simulated model with a
    `rationality` errs less on clear questions than on close calls.
    """

    expert: str
    alternatives: tuple[str, ...] = ()
    margin: float | None = None


@dataclass
class Completion:
    """One answer, with what it cost. `usage.calls` is 1 (a cache hit still counts a call)."""

    text: str
    usage: Usage
    cached: bool = False
    latency_s: float = 0.0
    model: str = ""
    attempts: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scores:
    """One scoring pass: log P(candidate | messages) for each candidate, in their order.

    `method` is "logprobs" (the model's token probabilities) or "sampled" (smoothed
    frequencies of sampled replies, for endpoints without log-probabilities); `usage.calls`
    is the query rounds it cost (1 for logprobs, k for k samples; a cache hit still counts).
    """

    logprobs: tuple[float, ...]
    usage: Usage
    method: str = "logprobs"
    cached: bool = False
    latency_s: float = 0.0
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def best(self) -> int:
        return max(range(len(self.logprobs)), key=self.logprobs.__getitem__)


@runtime_checkable
class LLM(Protocol):
    spec: str  # the spec string it was built from (secrets never included)
    model_id: str  # model identity with version/base URL, as keyed in the cache
    simulated: bool  # True only for sim: models; every report marks these

    def complete(
        self,
        messages: list[Message],
        *,
        choices: list[str] | None = None,  # constrain the reply to one of these (grammar)
        temperature: float = 0.0,
        max_tokens: int = 256,
        seed: int | None = None,
        sample: int = 0,  # sample index: T>0 calls are cached per sample so re-runs reproduce
        oracle: Oracle | None = None,  # required by sim: models, ignored by real ones
        meta: dict[str, Any] | None = None,  # episode/step/agent ids for the call log
    ) -> Completion: ...

    def score(
        self,
        messages: list[Message],
        candidates: list[str],
        *,
        seed: int | None = None,
        oracle: Oracle | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Scores: ...
