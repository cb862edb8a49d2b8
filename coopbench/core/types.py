"""Core value types shared by environments, planners, the episode loop and the results store.

All of them are plain dataclasses that round-trip through JSON (`to_json()` / `from_json()`),
because every one of them ends up in a results file that outlives the process.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from pydantic import TypeAdapter

from coopbench.core.metrics import recorded as recorded_metrics
from coopbench.core.metrics import zero

T = TypeVar("T", bound="JsonRecord")


@cache
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


class JsonRecord:
    """Mixin: dataclass <-> JSON-compatible dict; nested records are rebuilt by pydantic."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls: type[T], data: dict[str, Any]) -> T:
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return _adapter(cls).validate_python({k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Action(JsonRecord):
    """One agent's action: its canonical text and its index in the agent's fixed vocabulary."""

    agent: str
    text: str
    index: int


@dataclass(frozen=True)
class Feedback(JsonRecord):
    """Why a plan or an action was refused or failed, phrased for an LLM to read.

    `kind` is one of: parse, constraint, reach, ik, collision, execution, other.
    """

    agent: str | None
    kind: str
    message: str


class ParseError(ValueError):
    """Text that is not a legal action; the message is written to be shown to an LLM."""

    def __init__(self, message: str, *, agent: str | None = None) -> None:
        super().__init__(message)
        self.agent = agent

    def as_feedback(self) -> Feedback:
        return Feedback(agent=self.agent, kind="parse", message=str(self))


@dataclass
class Usage(JsonRecord):
    """LLM usage; sums with `+` across calls, steps and episodes."""

    calls: int = 0
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            calls=self.calls + other.calls,
            cache_hits=self.cache_hits + other.cache_hits,
            tokens_in=self.tokens_in + other.tokens_in,
            tokens_out=self.tokens_out + other.tokens_out,
            cost_usd=self.cost_usd + other.cost_usd,
        )


@dataclass
class PlanResult(JsonRecord):
    """What a planner decided for one environment step, and what it cost to decide."""

    joint: dict[str, Action]
    llm_queries: int = 0
    feedback_rounds: int = 0
    parse_failures: int = 0
    verify_failures: int = 0
    usage: Usage = field(default_factory=Usage)
    transcript: list[dict[str, Any]] = field(default_factory=list)



@dataclass(frozen=True)
class CriticRequest(JsonRecord):
    """Which advantage critic a planner wants; the runner resolves it (critics/resolve.py).

    `source` is a checkpoint path, "auto" (shipped, else cached, else trained on demand) or
    "train" (always trained anew).
    """

    source: str = "auto"
    device: str = "cpu"  # where scoring runs
    train_seconds: float = 120.0  # on-demand training budget
    strict: bool = False  # a critic below the quality floors is an error, not a warning


@dataclass
class StepRecord(JsonRecord):
    """One executed environment step: the joint action, its outcome and the planning effort."""

    step: int
    joint: dict[str, str]
    reward: float
    success: bool
    llm_queries: int = 0
    parse_failures: int = 0
    verify_failures: int = 0
    feedback: list[Feedback] = field(default_factory=list)
    transcript: list[dict[str, Any]] = field(default_factory=list)



class _EpisodeRecord(JsonRecord):
    """What `EpisodeResult` adds to its fields (which come from the metrics table): the
    `return` metric is the attribute `return_` (a Python keyword) and the key `return`."""

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)  # type: ignore[call-overload]
        data["return"] = data.pop("return_")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Any:
        data = dict(data)
        if "return" in data:
            data["return_"] = data.pop("return")
        return super().from_json(data)


EpisodeResult = dataclasses.make_dataclass(
    "EpisodeResult",
    [("cell", str), ("env", str), ("planner", str), ("llm", str), ("seed", int),
     ("episode", int, dataclasses.field(default=0)),
     *((m.field, m.type, dataclasses.field(default=zero(m))) for m in recorded_metrics()),
     ("wall_s", float, dataclasses.field(default=0.0)),
     ("error", str | None, dataclasses.field(default=None)),
     # sha256[:16] of the start state, each executed joint action and each next state
     # (features()): equal digests mean the same episode ("" in records older than it)
     ("trajectory", str, dataclasses.field(default="")),
     # where it ran: the Ray node id under Ray, else the host name
     ("node", str, dataclasses.field(default="")),
     # how the planner's LLM decoded: "constrained" | "free" ("" without an LLM, or older)
     ("decoding", str, dataclasses.field(default=""))],
    bases=(_EpisodeRecord,),
    namespace={"__doc__": "One finished episode: one line of `episodes.jsonl`; its metric "
                          "fields are the recorded ones of `core.metrics.METRICS`.",
               "__module__": __name__},
)
