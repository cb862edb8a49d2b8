"""The episode loop: drive any `LanguageEnv` with any `Planner` to an `EpisodeResult`."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from coopbench.core.errors import PlannerContractError
from coopbench.core.metrics import StepOutcome, zero
from coopbench.core.metrics import recorded as recorded_metrics
from coopbench.core.types import EpisodeResult, StepRecord
from coopbench.envs.base import LanguageEnv
from coopbench.planners.base import AdvantageCritic, Planner

StepCallback = Callable[[StepRecord], None]


def run_episode(
    env: LanguageEnv,
    planner: Planner,
    *,
    seed: int,
    llm: Any = None,
    env_id: str = "",
    planner_id: str = "",
    llm_spec: str = "",
    cell: str = "",
    episode: int = 0,
    on_step: StepCallback | None = None,
    on_reset: Callable[[], None] | None = None,
    critic: AdvantageCritic | None = None,
) -> EpisodeResult:
    """Play one episode to termination or truncation (the env's step cap).

    The planner's generator is derived from `seed` and `episode`, so an episode is
    reproducible on its own, whatever ran before it in the process. `critic` is a ready
    critic: this loop never resolves one (the runner does, `coopbench.runner.single.assemble`).
    """
    started = time.perf_counter()
    result = EpisodeResult(
        cell=cell, env=env_id, planner=planner_id, llm=llm_spec, seed=seed, episode=episode
    )
    totals = {m.field: zero(m) for m in recorded_metrics() if m.step is not None}
    env.reset(seed=seed)
    trace = hashlib.sha256(_state_bytes(env))
    if on_reset is not None:
        on_reset()
    rng = np.random.default_rng([seed, episode])
    if critic is None:  # a planner without a critic may define reset(env, llm, rng)
        planner.reset(env, llm, rng)
    else:
        planner.reset(env, llm, rng, critic=critic)
    while env.agents:
        plan = planner.act(env)
        _check_joint(plan.joint, env, planner_id or type(planner).__name__, env_id)
        step = env.steps_taken
        _, rewards, _, _, _ = env.step(plan.joint)
        reward = next(iter(rewards.values()), 0.0)
        trace.update(json.dumps({a: act.text for a, act in plan.joint.items()},
                                sort_keys=True).encode())
        trace.update(_state_bytes(env))
        record = StepRecord(
            step=step,
            joint={a: act.text for a, act in plan.joint.items()},
            reward=reward,
            success=env.success(),
            llm_queries=plan.llm_queries,
            parse_failures=plan.parse_failures,
            verify_failures=plan.verify_failures,
            feedback=list(env.last_feedback),
            transcript=plan.transcript,
        )
        outcome = StepOutcome(plan, reward)
        for metric in recorded_metrics():
            if metric.step is not None:
                totals[metric.field] += metric.step(outcome)
        if on_step is not None:
            on_step(record)
    for metric in recorded_metrics():
        value = totals[metric.field] if metric.step is not None else metric.end(env)
        setattr(result, metric.field, value)
    result.trajectory = trace.hexdigest()[:16]
    result.decoding = str(getattr(planner, "decoding", "") or "")
    result.wall_s = time.perf_counter() - started
    return result


def _state_bytes(env: LanguageEnv) -> bytes:
    """The env's numeric state, for the trajectory digest (empty if it has none)."""
    try:
        return np.asarray(env.features(), dtype=np.float32).tobytes()
    except NotImplementedError:
        return b""


def _check_joint(joint: Any, env: LanguageEnv, planner_id: str, env_id: str) -> None:
    """A joint action names every live agent, no other: a missing one would silently WAIT."""
    missing = [a for a in env.agents if a not in joint]
    extra = [a for a in joint if a not in env.agents]
    if missing or extra:
        problem = (f"no action for {', '.join(map(str, missing))}" if missing
                   else f"an action for {', '.join(map(str, extra))}, which is not a live agent")
        raise PlannerContractError(
            f"planner {planner_id} on {env_id or type(env).__name__}: rule joint-action: it "
            f"returned {problem}; a joint action names every live agent (its WAIT to idle)")
