"""The metrics table: every number an episode records and a report shows, declared once.

Each `Metric` says how an episode computes it (added up over the executed steps from a
`StepOutcome`, or read from the env once the episode ends), how a cell aggregates it over seeds
(`wilson`: a success rate with its interval; `mean_se`: mean ± standard error), and how
reports label and format it. `EpisodeResult` takes its fields from here, `episode.py` computes
them, and the summary, tables, plots and the marl-eval export read them from here, so adding
a metric is one entry in `METRICS` (docs/runner.md shows one).
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class StepOutcome:
    """What one executed step tells the metrics: the planner's `PlanResult` and the reward."""

    plan: Any
    reward: float


@dataclass(frozen=True)
class Metric:
    """One metric. `step` or `end` make it a recorded field of every episode line; one with
    neither is derived for reports from recorded ones (`value`)."""

    name: str  # its key in episodes.jsonl, summaries and exports
    type: type = int
    step: Callable[[StepOutcome], Any] | None = None  # added up over the episode's steps
    end: Callable[[Any], Any] | None = None  # read from the env after the last step
    value: Callable[[Any], float] | None = None  # an episode's value; default: its field
    # how reports show it (report=None: recorded, not shown per cell)
    report: str | None = None  # key of a summary cell row
    aggregate: Literal["wilson", "mean_se"] = "mean_se"
    label: str = ""  # the table column
    digits: int = 1
    csv: str | None = None  # CSV columns `<csv>_mean`, `<csv>_se` (wilson: `<report>`, ...)
    marl_eval: str | None = None  # its name in the marl-eval export

    @property
    def field(self) -> str:
        """The `EpisodeResult` attribute (`return` is a keyword: `return_`)."""
        return f"{self.name}_" if keyword.iskeyword(self.name) else self.name

    @property
    def recorded(self) -> bool:
        return self.step is not None or self.end is not None

    def of(self, episode: Any) -> float:
        """This metric's value for one `EpisodeResult`."""
        return self.value(episode) if self.value is not None else getattr(episode, self.field)


def _usage(name: str) -> Callable[[StepOutcome], Any]:
    return lambda s: getattr(s.plan.usage, name)


METRICS: tuple[Metric, ...] = (
    Metric("success", bool, end=lambda env: bool(env.success()), report="success_rate",
           aggregate="wilson", label="success [95% CI]", digits=2, marl_eval="success"),
    Metric("return", float, step=lambda s: s.reward, marl_eval="return"),
    Metric("interaction_steps", step=lambda s: 1, report="interaction_steps",
           label="steps ± SE", csv="steps", marl_eval="interaction_steps"),
    Metric("llm_queries", step=lambda s: s.plan.llm_queries, report="llm_queries",
           label="queries ± SE", csv="queries", marl_eval="llm_queries"),
    Metric("parse_failures", step=lambda s: s.plan.parse_failures),
    Metric("verify_failures", step=lambda s: s.plan.verify_failures),
    Metric("tokens_in", step=_usage("tokens_in"), marl_eval="llm_tokens_in"),
    Metric("tokens_out", step=_usage("tokens_out"), marl_eval="llm_tokens_out"),
    Metric("tokens", value=lambda e: e.tokens_in + e.tokens_out, report="tokens",
           label="tokens ± SE", digits=0, csv="tokens"),
    Metric("cost_usd", float, step=_usage("cost_usd"), report="cost_usd", label="cost $ ± SE",
           digits=4, csv="cost", marl_eval="cost_usd"),
    Metric("cache_hits", step=_usage("cache_hits")),
)


def recorded() -> list[Metric]:
    """The metrics every episode line carries, in their order there."""
    return [m for m in METRICS if m.recorded]


def reported() -> list[Metric]:
    """The metrics a cell row shows, in column order."""
    return [m for m in METRICS if m.report is not None]


def exported() -> list[Metric]:
    """The metrics of the marl-eval export, in its order."""
    return [m for m in METRICS if m.marl_eval is not None]


def by_name(name: str) -> Metric:
    return next(m for m in METRICS if m.name == name)


def zero(metric: Metric) -> Any:
    return metric.type()
