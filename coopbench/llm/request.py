"""What a backend is asked (`Request`) and what it answers (`Reply`).

The shared front end (`coopbench.llm.client.Model`) does caching, counting, pricing and
logging once; backends only turn a `Request` into a `Reply`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from coopbench.llm.base import Message, Oracle


@dataclass(frozen=True)
class Request:
    messages: tuple[Message, ...]
    choices: tuple[str, ...] | None = None
    temperature: float = 0.0
    max_tokens: int = 256
    seed: int | None = None
    sample: int = 0
    oracle: Oracle | None = None

    def output_params(self) -> dict[str, Any]:
        """Every parameter that changes the output (the cache key uses exactly these)."""
        return {
            "messages": [dict(m) for m in self.messages],
            "choices": list(self.choices) if self.choices is not None else None,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "sample": self.sample,
        }

    def sampling_seed(self) -> int:
        """The seed the model samples with, from the caller's seed and the sample index, the
        same for every backend: the embedded model and a server it is served by then draw
        the same replies at temperature > 0."""
        blob = f"{self.seed}|{self.sample}".encode()
        return int.from_bytes(hashlib.sha256(blob).digest()[:4], "little") & 0x7FFFFFFF


@dataclass
class Reply:
    text: str
    tokens_in: int
    tokens_out: int
    attempts: int = 1
    retries: list[dict[str, Any]] = field(default_factory=list)  # one entry per failed attempt
    model: str = ""  # the model name the backend reported, if any
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreRequest:
    """Score fixed candidate replies to `messages` instead of generating one.

    `oracle` is the simulated model's answer key (ignored by real models), as in `Request`.
    """

    messages: tuple[Message, ...]
    candidates: tuple[str, ...]
    oracle: Oracle | None = None
    seed: int | None = None  # only the sampled fallback draws anything

    def output_params(self) -> dict[str, Any]:
        """Every parameter that changes the scores (the cache key uses exactly these)."""
        return {
            "kind": "score",
            "messages": [dict(m) for m in self.messages],
            "candidates": list(self.candidates),
            "seed": self.seed,
        }


@dataclass
class ScoreReply:
    """log P(candidate | messages) per candidate, summed over its tokens (end of turn included).

    `method` says how they were obtained: "logprobs" (the model's own token probabilities) or
    "sampled" (frequencies of k sampled replies, smoothed: a coarse stand-in for endpoints
    that return no log-probabilities). `calls` is how many model requests that took: a
    sampled fallback spends one per sample, and each is a query round.
    """

    logprobs: list[float]
    tokens_in: int
    tokens_out: int = 0
    method: str = "logprobs"
    calls: int = 1
    attempts: int = 1
    retries: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """Turns one request into one reply; raises `CoopbenchError` on permanent failure."""

    model_id: str
    simulated: bool
    cacheable: bool  # False for backends where caching buys nothing (sim)

    def generate(self, request: Request) -> Reply: ...

    def score(self, request: ScoreRequest) -> ScoreReply: ...

    # Optional: `capabilities(refresh: bool = False) -> llm.capabilities.Capabilities`;
    # a backend without it is treated as free text with sampled scoring.


def estimate_tokens(text: str) -> int:
    """Rough token count: one token per 4 characters, rounded up (OpenAI's rule of thumb).

    Used only where a backend reports no usage (the simulated model).
    """
    return math.ceil(len(text) / 4)


def estimate_prompt_tokens(messages: tuple[Message, ...] | list[Message]) -> int:
    """Content estimate plus 4 tokens per message for the chat template's role markers."""
    return sum(estimate_tokens(m.get("content", "")) + 4 for m in messages)
