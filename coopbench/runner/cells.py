"""Expand a matrix spec into cells and episode tasks; capabilities skip misfits.

A cell is env × planner × llm × seed (× decoding, × critic data budget for planners that
use a critic, when the spec has those axes). Planners that need no LLM (`needs_llm=False`) get one
cell per env × seed with llm `none`, whatever `llms` lists. The rules below read only the
registries' typed capabilities (`Spec.caps`: `EnvCaps`, `PlannerCaps` in
`coopbench.core.caps`), so a plug-in env or planner takes part by declaring them:

- planner `needs_llm` and the spec lists no LLM                → skipped
- planner `requires_partial_obs`, env `partial_obs=False`      → skipped
- planner `requires_full_obs`, env `partial_obs=True`          → skipped
- planner `needs_critic`, env `critic=False` (no critic can be built for it) → skipped
- planner `env_families` not containing the env id's family    → skipped
- planner `max_agents` below env `agents`                      → skipped
- planner `mode` not in env `modes` (when the env lists them)  → skipped
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from coopbench import envs, planners
from coopbench.core.caps import EnvCaps, PlannerCaps
from coopbench.core.errors import UnknownIdError
from coopbench.core.registry import Spec
from coopbench.runner.seeds import check_episode_count
from coopbench.runner.single import EpisodeTask
from coopbench.runner.spec import MatrixSpec

NO_LLM = "none"

Rule = Callable[[Spec, Spec, list[str]], str | None]


def _caps(env: Spec, planner: Spec) -> tuple[EnvCaps, PlannerCaps]:
    return cast(EnvCaps, env.caps), cast(PlannerCaps, planner.caps)


def _needs_llm(env: Spec, planner: Spec, llms: list[str]) -> str | None:
    if _caps(env, planner)[1].needs_llm and not llms:
        return f"{planner.id} needs an LLM and the spec lists none under `llms`"
    return None


def _partial_obs(env: Spec, planner: Spec, llms: list[str]) -> str | None:
    # `uses_partial_obs` (a planner that plans from per-agent views) never skips: a fully
    # observed env serves the global view (RoCo's dialog runs on Sweep Floor); `requires_*` do.
    e, p = _caps(env, planner)
    if p.requires_partial_obs and e.partial_obs is False:
        return f"{planner.id} needs per-agent partial views; {env.id} is fully observed"
    if p.requires_full_obs and e.partial_obs is True:
        return f"{planner.id} needs the full state; {env.id} is partially observed"
    return None


def _critic(env: Spec, planner: Spec, llms: list[str]) -> str | None:
    e, p = _caps(env, planner)
    if p.needs_critic and not e.critic:
        return f"{planner.id} needs an advantage critic; {env.id} declares none can be trained"
    return None


def _family(env: Spec, planner: Spec, llms: list[str]) -> str | None:
    families = _caps(env, planner)[1].env_families
    if families and env.family not in families:
        return f"{planner.id} supports env families {', '.join(families)}, not {env.family}"
    return None


def _agents(env: Spec, planner: Spec, llms: list[str]) -> str | None:
    e, p = _caps(env, planner)
    limit, agents = p.max_agents, e.agents
    if limit is not None and agents is not None and agents > limit:
        return f"{planner.id} handles at most {limit} agents; {env.id} has {agents}"
    return None


def _mode(env: Spec, planner: Spec, llms: list[str]) -> str | None:
    e, p = _caps(env, planner)
    if e.modes and p.mode not in e.modes:
        return f"{planner.id} plans in {p.mode} mode; {env.id} supports {', '.join(e.modes)}"
    return None


RULES: tuple[Rule, ...] = (_needs_llm, _partial_obs, _critic, _family, _agents, _mode)


@dataclass(frozen=True)
class Cell:
    """env × planner × llm (seeds are listed in the plan)."""

    env: str
    planner: str
    llm: str
    decoding: str = "auto"  # explicit values come from the spec's decoding axis
    critic_data: str = ""  # a budget of the spec's critic_data axis (critics/budget.py label)
    env_kwargs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    planner_kwargs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Plan:
    """Everything a matrix will run, and what it will not run and why."""

    cells: list[Cell]
    skipped: list[dict[str, str]]  # {"env", "planner", "reason"}
    tasks: list[EpisodeTask]
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> registry Spec JSON

    def to_json(self) -> dict[str, Any]:
        return {
            "cells": [{"env": c.env, "planner": c.planner, "llm": c.llm,
                       **({"decoding": c.decoding} if c.decoding != "auto" else {}),
                       **({"critic_data": c.critic_data} if c.critic_data else {})}
                      for c in self.cells],
            "skipped": self.skipped,
            "episodes": len(self.tasks),
            "specs": self.specs,  # what each id was (caps, defaults, providing package)
        }


def resolve(registry: Any, id: str, where: str) -> Spec:
    try:
        return registry.spec(id)
    except UnknownIdError as exc:
        raise UnknownIdError(f"{where}: {exc}") from None


def _budgets(spec: MatrixSpec, planner: Spec, kwargs: dict[str, Any]) -> list[str]:
    """The critic data budgets a planner runs under: the spec's axis for one that uses a
    critic and leaves it to the runner (`critic: auto`), else none (its own critic wins)."""
    uses = cast(PlannerCaps, planner.caps).needs_critic and kwargs.get("critic", "auto") == "auto"
    return spec.critic_budgets() if uses and spec.critic_data else [""]


def expand(spec: MatrixSpec, source: str = "<spec>") -> Plan:
    """Cells in spec order; tasks ordered seed-major so every cell advances together."""
    cells: list[Cell] = []
    skipped: list[dict[str, str]] = []
    env_specs = [(resolve(envs.registry, e.id, f"{source}: envs"), e) for e in spec.envs]
    planner_specs = [
        (resolve(planners.registry, p.id, f"{source}: planners"), p) for p in spec.planners
    ]
    for env_spec, env_entry in env_specs:
        for planner_spec, planner_entry in planner_specs:
            reason = next(
                (r for rule in RULES if (r := rule(env_spec, planner_spec, spec.llms))), None
            )
            if reason:
                skipped.append({"env": env_spec.id, "planner": planner_spec.id, "reason": reason})
                continue
            needs_llm = cast(PlannerCaps, planner_spec.caps).needs_llm
            own = planner_entry.kwargs.get("decoding")  # a planner's own setting wins
            decodings = [own] if own else spec.decodings() if needs_llm else ["auto"]
            budgets = _budgets(spec, planner_spec, planner_entry.kwargs)
            for llm in spec.llms if needs_llm else [NO_LLM]:
                for decoding in decodings:
                    kwargs = dict(planner_entry.kwargs)
                    if decoding != "auto":
                        kwargs["decoding"] = decoding
                    for budget in budgets:
                        cell = Cell(env_spec.id, planner_spec.id, llm, decoding, budget,
                                    env_entry.kwargs, kwargs)
                        if cell not in cells:
                            cells.append(cell)
    check_episode_count(len(cells) * len(spec.seeds) * spec.episodes_per_seed,
                        f"{source}: {len(cells)} cells x {len(spec.seeds):,} seeds x "
                        f"{spec.episodes_per_seed:,} episodes per seed")
    tasks = [
        EpisodeTask(
            c.env, c.planner, c.llm, seed, episode,
            env_kwargs=dict(c.env_kwargs), planner_kwargs=dict(c.planner_kwargs),
            max_steps=spec.caps.max_steps, decoding=c.decoding, critic_data=c.critic_data,
        )
        for seed in spec.seeds
        for episode in range(spec.episodes_per_seed)
        for c in cells
    ]
    specs = {s.id: s.to_json() for s, _ in [*env_specs, *planner_specs]}
    return Plan(cells, skipped, tasks, specs)
