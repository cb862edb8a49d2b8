"""Critics trained on a data budget: one per (env configuration, data source, transitions).

A matrix's `critic_data` axis (docs/runner.md) names data sources and budgets so that
"success against critic data" is one spec. Before any episode the runner asks this module
for one critic per (env, source, budget): from the cache under `<cache root>/critics/budget/`,
or collected and trained now (said on stderr).

A source is `expert`, `reset` or `planner:<id>@<llm spec>` (ReAd's data: the planner rolled
out with that model, `epsilon` chance per step of a random legal joint action), or several
joined with `+` (`expert+reset` is today's on-demand data). Episodes of the named sources
interleave in the proportion expert 1 : reset 2 (the on-demand recipe's 20 : 40) and, when
the planner is mixed with them, half the episodes planner-made (ReAd's 50 : 50 mix). The
stream of one (env, source) is collected once up to the largest budget still missing; every
budget is its first `transitions` rows, so a larger budget holds a smaller one's data.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coopbench.core.errors import CoopbenchError
from coopbench.core.io import write_json_atomic
from coopbench.critics.critic import Critic
from coopbench.critics.resolve import (
    ResolvedCritic,
    _saved_quality,
    checkpoint_name,
    config_key,
    made_kwargs,
    quality_path,
)

if TYPE_CHECKING:
    from coopbench.critics.dataset import Progress

PLANNER = "planner:"
PLAIN = ("expert", "reset")
MIN_TRANSITIONS = 10  # fewer rows cannot be split into training and validation episodes
DEFAULT_GAMMA = 0.95  # the on-demand critics' discount (CollectConfig's default)


@dataclass(frozen=True)
class BudgetRecipe:
    """How a budget critic is collected and trained (part of the cache key: a change retrains)."""

    expert_weight: int = 1  # episodes of each source, in proportion
    reset_weight: int = 2
    branch: float = 0.3  # counterfactual rows per expert step (see dataset.py)
    ensemble: int = 3
    seed: int = 0


RECIPE = BudgetRecipe()


@dataclass(frozen=True)
class DataSource:
    """Where a budget's rows come from (canonical: planner ids in full, terms in order)."""

    plain: tuple[str, ...]  # expert and/or reset
    planner: str = ""  # registered planner id, full
    llm: str = ""  # its model spec ("" for a planner that needs none)
    epsilon: float = 0.0
    gamma: float = DEFAULT_GAMMA  # discount of the Monte-Carlo targets (a task whose wasted
    #                               step must cost more than the critic's error wants less)

    @classmethod
    def parse(cls, text: str, epsilon: float = 0.0, gamma: float = DEFAULT_GAMMA) -> DataSource:
        """`expert+reset`, `planner:read-j-scored-v0@local`, ...; bad input is one line."""
        text = str(text).strip()
        if "|" in text:
            raise CoopbenchError(f"critic data source {text!r}: '|' is not allowed (cell keys)")
        head, found, rest = text.partition(PLANNER)
        plain = tuple(t for t in head.split("+") if t)
        if found and head and not head.endswith("+"):
            raise CoopbenchError(f"critic data source {text!r}: join sources with +")
        unknown = [t for t in plain if t not in PLAIN]
        if unknown or not (plain or found) or len(set(plain)) != len(plain):
            raise CoopbenchError(
                f"unknown critic data source {text!r}: use expert, reset, "
                "planner:<planner id>@<llm spec>, or several joined with + (expert+reset)")
        plain = tuple(t for t in PLAIN if t in plain)
        if not 0.0 <= float(epsilon) <= 1.0:
            raise CoopbenchError(f"critic data epsilon must be in [0, 1] (got {epsilon})")
        if not 0.0 < float(gamma) <= 1.0:
            raise CoopbenchError(f"critic data gamma must be in (0, 1] (got {gamma})")
        if not found:
            if epsilon:
                raise CoopbenchError(f"critic data source {text!r}: epsilon applies to a "
                                     "planner:<id>@<llm> source only")
            return cls(plain, gamma=float(gamma))
        planner, _, llm = rest.partition("@")
        return cls(plain, *_checked_planner(planner, llm), float(epsilon), float(gamma))

    @property
    def text(self) -> str:
        terms = list(self.plain)
        if self.planner:
            terms.append(f"{PLANNER}{self.planner}" + (f"@{self.llm}" if self.llm else ""))
        return "+".join(terms)

    def weights(self) -> tuple[int, int, int]:
        """Episodes of expert, reset and planner in proportion (see the module docstring)."""
        expert = RECIPE.expert_weight if "expert" in self.plain else 0
        reset = RECIPE.reset_weight if "reset" in self.plain else 0
        planner = (expert + reset or 1) if self.planner else 0
        return expert, reset, planner

    def to_json(self) -> dict[str, Any]:
        """The default discount is left out, so budgets cached before it was a key still match."""
        gamma = {"gamma": self.gamma} if self.gamma != DEFAULT_GAMMA else {}
        return {"source": self.text, "epsilon": self.epsilon, **gamma}


def _checked_planner(planner: str, llm: str) -> tuple[str, str]:
    from coopbench import llm as llm_layer
    from coopbench import planners

    if not planner:
        raise CoopbenchError("critic data source planner:<id>@<llm>: the planner id is missing")
    spec = planners.registry.spec(planner)  # an unknown id: one line with suggestions
    if spec.caps.needs_llm and not llm:
        raise CoopbenchError(f"critic data source planner:{planner}: {spec.id} needs an LLM; "
                             f"write planner:{spec.id}@<llm spec>")
    if not spec.caps.needs_llm and llm:
        raise CoopbenchError(f"critic data source planner:{planner}@{llm}: {spec.id} takes "
                             "no LLM")
    if llm:
        llm_layer.parse(llm)
    return spec.id, llm


@dataclass(frozen=True)
class DataBudget:
    """One point of the axis: a source and how many transitions its critic is trained on."""

    source: DataSource
    transitions: int

    @property
    def label(self) -> str:
        """As the cell key writes it: `expert+reset,n=500`, `planner:...,eps=0.2,n=2000`,
        `expert+reset,gamma=0.8,n=500` (the discount only where it is not the default)."""
        eps = f",eps={self.source.epsilon:g}" if self.source.planner else ""
        gamma = f",gamma={self.source.gamma:g}" if self.source.gamma != DEFAULT_GAMMA else ""
        return f"{self.source.text}{eps}{gamma},n={self.transitions}"

    @classmethod
    def from_label(cls, label: str) -> DataBudget:
        rest, _, n = label.rpartition(",n=")
        head, found, gamma = rest.rpartition(",gamma=")
        rest, gamma = (head, gamma) if found else (rest, str(DEFAULT_GAMMA))
        text, found, eps = rest.rpartition(",eps=")
        if not found:
            text, eps = rest, "0"
        try:
            return cls(DataSource.parse(text, float(eps), float(gamma)), int(n))
        except ValueError:
            raise CoopbenchError(f"not a critic data budget: {label!r}") from None

    def to_json(self) -> dict[str, Any]:
        return {**self.source.to_json(), "transitions": self.transitions, "label": self.label}


def check_transitions(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_TRANSITIONS:
        raise CoopbenchError(f"a critic data budget is a number of transitions >= "
                             f"{MIN_TRANSITIONS} (got {value!r})")
    return value


def budget_key(env: Any, budget: DataBudget) -> str:
    parts = {"env": json.loads(config_key(env)), "source": budget.source.to_json(),
             "transitions": budget.transitions, "recipe": asdict(RECIPE)}
    return json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)


def budget_path(env: Any, budget: DataBudget) -> Path:
    from coopbench.llm.paths import cache_root

    stem = checkpoint_name(env.spec.id)[:-3]
    digest = hashlib.sha256(budget_key(env, budget).encode()).hexdigest()[:16]
    return cache_root() / "critics" / "budget" / f"{stem}-n{budget.transitions}-{digest}.pt"


def collect_stream(env: Any, source: DataSource, transitions: int) -> Any:
    """The first `transitions` rows of (env, source)'s data stream."""
    from coopbench.critics.dataset import CollectConfig, collect

    expert, reset, planner = source.weights()
    cfg = CollectConfig(env.spec.id, expert_episodes=expert, reset_episodes=reset,
                        llm_episodes=planner, llm=source.llm or "none",
                        llm_planner=source.planner or "central-v0", epsilon=source.epsilon,
                        branch=RECIPE.branch, gamma=source.gamma, seed=RECIPE.seed,
                        env_kwargs=made_kwargs(env),
                        max_transitions=transitions)
    return collect(cfg, _tenths_said(source, transitions) if source.planner else None)


def _tenths_said(source: DataSource, transitions: int) -> Progress:
    """A line on stderr at each tenth of the rows: a planner source asks its model every step
    (52 min for 800 rows of Central with the embedded 0.5B on 2 cores), so silence would read as
    a hang; at most ten lines, whatever the budget."""
    said = 0

    def progress(_source: str, _episodes: int, rows: int) -> None:
        nonlocal said
        tenth = min(10, rows * 10 // transitions)
        if tenth > said:
            said = tenth
            print(f"coopbench: {min(rows, transitions)}/{transitions} transitions of "
                  f"{source.text} critic data", file=sys.stderr)

    return progress


def locate_budgets(env: Any, source: DataSource, budgets: list[int],
                   train_seconds: float) -> list[ResolvedCritic]:
    """One critic per budget of `source` on `env`'s configuration: cached, or trained now
    (the stream collected once, up to the largest budget missing)."""
    found: dict[int, ResolvedCritic] = {}
    missing = []
    for n in budgets:
        path = budget_path(env, DataBudget(source, n))
        if path.exists():
            try:
                critic = Critic.load(path, env)
            except CoopbenchError as exc:  # a cache is disposable: retrain rather than stop
                print(f"coopbench: ignoring cached critic ({exc})", file=sys.stderr)
            else:
                found[n] = ResolvedCritic(critic, str(path), "cached", _saved_quality(path))
                continue
        missing.append(n)
    if missing:
        found.update(_train_budgets(env, source, sorted(set(missing)), train_seconds))
    return [found[n] for n in budgets]


def _train_budgets(env: Any, source: DataSource, budgets: list[int],
                   seconds: float) -> dict[int, ResolvedCritic]:
    from coopbench.critics import resolve
    from coopbench.critics.train import TrainConfig, train

    print(f"coopbench: collecting {max(budgets)} transitions of {source.text} critic data on "
          f"{env.spec.id} {json.dumps(made_kwargs(env), sort_keys=True)} for budgets "
          f"{', '.join(map(str, budgets))}", file=sys.stderr)
    stream = collect_stream(env, source, max(budgets))
    if len(stream) < max(budgets):
        raise CoopbenchError(f"critic data for {env.spec.id} from {source.text} stopped at "
                             f"{len(stream)} transitions")
    out = {}
    for n in budgets:
        path = budget_path(env, DataBudget(source, n))
        critic, report = train(stream.head(n), TrainConfig(
            max_seconds=seconds, ensemble=RECIPE.ensemble, device="cpu", threads=1,
            seed=RECIPE.seed), path)
        figures = resolve.quality(critic, env)
        write_json_atomic(quality_path(path), figures)
        print(f"coopbench: critic on {n} transitions trained in {report.seconds:.0f} s "
              f"({report.stopped} stop); expert above random {figures['joint_rank']:.0%}",
              file=sys.stderr)
        out[n] = ResolvedCritic(critic, str(path), "trained", figures)
    return out
