"""Task-progress measures: what the simulated LLM's "correct" ranking is based on.

A real LLM ranks two states by reading them; the simulated one (`sim:expert?noise=p`) needs a
ground truth to answer from. `progress(env, agent)` gives a number that grows as the team gets
closer to its goal, seen from `agent`'s side. It is looked up in this order:

1. the env's own `task_progress(agent)` method, if it has one;
2. a measure registered here for the env's family (`register_measure`), e.g. Overcooked's
   (`coopbench.credit.progress_overcooked`);
3. the generic measure: minus the number of steps the env's scripted expert needs from this
   state to succeed (rolled out on a snapshot, capped at `horizon`), so any env with
   `expert_joint()` and `snapshot()/restore()` has one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Measure = Callable[[Any, str], float]

_MEASURES: dict[str, str | Measure] = {
    "overcooked": "coopbench.credit.progress_overcooked:overcooked_progress",
}


def register_measure(family: str, measure: str | Measure) -> None:
    """Use `measure(env, agent) -> float` for every env id of `family` (`family/name-vN`)."""
    _MEASURES[family] = measure


def _resolve(entry: str | Measure) -> Measure:
    if callable(entry):
        return entry
    import importlib

    module, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module), attr)


def measure_for(env: Any, env_id: str | None = None) -> Measure:
    """The progress measure that applies to `env` (see the module docstring for the order)."""
    if callable(getattr(env, "task_progress", None)):
        return lambda e, agent: float(e.task_progress(agent))
    family = (env_id or "").split("/", 1)[0]
    if family in _MEASURES:
        return _resolve(_MEASURES[family])
    return expert_distance_progress


def expert_distance_progress(env: Any, agent: str, horizon: int = 50) -> float:
    """Minus the scripted expert's steps to success from the current state (-horizon if none).

    The same for every agent: a generic measure has no notion of who contributed.
    """
    if env.success():
        return 0.0
    snap = env.snapshot()
    try:
        # Look past the episode's own step limit: progress is a property of the state.
        env.agents = list(env.possible_agents)
        if hasattr(env, "steps_taken"):
            env.steps_taken = 0
        for steps in range(1, horizon + 1):
            if not env.agents:
                break
            env.step(env.expert_joint())
            if env.success():
                return -float(steps)
        return -float(horizon)
    finally:
        env.restore(snap)
