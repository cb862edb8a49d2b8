"""`check_env`: one call that tells an env author whether coopbench can use their env.

    >>> from coopbench.testing import check_env
    >>> check_env("meetgrid/meet-v0")                      # doctest: +SKIP

It runs, in order: the static contract (`coopbench.envs.validate.check_contract`),
PettingZoo's parallel and AEC conformance tests, exact snapshot/restore (planners such as
ReAd rewind the env to try actions), and whole-trajectory determinism (results are only
reproducible if the same seed and actions give the same episode). A failure raises
`EnvCheckFailed` (an `AssertionError`, so pytest shows it as a test failure) or the
contract's one-line `PluginEnvError`.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from coopbench.envs.validate import check_contract


class EnvCheckFailed(AssertionError):
    """The env runs but breaks a behavioural promise (conformance, rewinds, determinism)."""


def check_env(
    env_or_id: str | Any | Callable[[], Any], seed: int = 0, steps: int = 10
) -> None:
    """Check an env id, an unused env instance, or an env class or zero-argument factory;
    `steps` bounds every rollout (PettingZoo's cycles, the replayed trajectories)."""
    factory = _factory(env_or_id)
    env = factory()
    spec = getattr(env, "spec", None)
    env_id = getattr(spec, "id", None) or type(env).__name__
    check_contract(env, env_id)
    from pettingzoo.test import api_test, parallel_api_test
    from pettingzoo.utils.conversions import parallel_to_aec

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # PettingZoo warns about optional API it probes
        parallel_api_test(factory(), num_cycles=steps)
        api_test(parallel_to_aec(factory()), num_cycles=steps)
    _check_snapshot_restore(factory(), env_id, seed, steps)
    _check_determinism(factory, env_id, seed, steps)


def _factory(env_or_id: str | Any | Callable[[], Any]) -> Callable[[], Any]:
    """Fresh envs on demand: made from the id, by the factory, or copied from the instance."""
    if isinstance(env_or_id, str):
        from coopbench import envs

        return lambda: envs.make(env_or_id)
    if isinstance(env_or_id, type) or (
        callable(env_or_id) and not hasattr(env_or_id, "possible_agents")
    ):  # an env class, or a function returning an env
        return env_or_id
    template = copy.deepcopy(env_or_id)  # the caller's env is never stepped
    return lambda: copy.deepcopy(template)


def _frame(env: Any, out: tuple | None = None) -> Any:
    """Everything an episode step exposes, as plain comparable values."""
    observations = (out or (None,))[0] or {}
    frame = {
        "observations": {a: np.asarray(o).tolist() for a, o in observations.items()},
        "features": np.asarray(env.features()).tolist(),
        "describe": env.describe(),
        "agents": list(env.agents),
        "steps_taken": getattr(env, "steps_taken", None),
    }
    if out is not None and len(out) == 5:
        frame["rewards"], frame["terminations"], frame["truncations"] = out[1], out[2], out[3]
        frame["feedback"] = [f.to_json() if hasattr(f, "to_json") else str(f)
                             for f in getattr(env, "last_feedback", [])]
    return frame


def _rollout(env: Any, rng: np.random.Generator, steps: int,
             plan: list[dict[str, str]] | None = None) -> tuple[list, list[dict[str, str]]]:
    """Step with seeded random legal actions (or the given `plan`) until done or `steps`."""
    frames, taken = [], []
    for i in range(steps):
        if not env.agents or (plan is not None and i >= len(plan)):
            break
        if plan is not None:
            joint = plan[i]
        else:
            joint = {}
            for agent in env.agents:
                options = env.action_options(agent)
                joint[agent] = options[int(rng.integers(len(options)))]
        taken.append(joint)
        try:
            frames.append(_frame(env, env.step(dict(joint))))
        except Exception as exc:
            if plan is None:
                raise
            frames.append({"error": f"{type(exc).__name__}: {exc}"})  # replay no longer fits
            break
    return frames, taken


def _first_difference(a: list, b: list) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            keys = [k for k in {**x, **y} if x.get(k) != y.get(k)]
            return f"step {i + 1} differs in {', '.join(keys)}"
    return f"lengths differ ({len(a)} vs {len(b)} steps)"


def _check_snapshot_restore(env: Any, env_id: str, seed: int, steps: int) -> None:
    """Rewinding to a snapshot taken mid-episode and replaying gives the same future."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    _rollout(env, rng, max(steps // 3, 1))  # a mid-episode state, not just the start
    if not env.agents:
        return
    before = _frame(env)
    snap = env.snapshot()
    future, plan = _rollout(env, rng, steps)
    env.restore(snap)
    if _frame(env) != before:
        diff = [k for k in before if before[k] != _frame(env)[k]]
        raise EnvCheckFailed(f"env {env_id!r}: restore(snapshot()) does not bring back the "
                             f"state (differs in {', '.join(diff)}); snapshot all mutable state")
    replay, _ = _rollout(env, rng, steps, plan)
    if replay != future:
        raise EnvCheckFailed(f"env {env_id!r}: replaying the same actions after restore gives "
                             f"a different future ({_first_difference(future, replay)}); the "
                             "snapshot misses some state (a random generator, a counter?)")


def _check_determinism(factory: Callable[[], Any], env_id: str, seed: int, steps: int) -> None:
    """Two fresh envs reset with one seed and fed the same actions agree at every step."""
    traces = []
    for _ in range(2):
        env = factory()
        out = env.reset(seed=seed)
        frames, plan = _rollout(env, np.random.default_rng(seed), steps,
                                traces[0][1] if traces else None)
        start = {"reset": {a: np.asarray(o).tolist() for a, o in out[0].items()}}
        traces.append(([start, *frames], plan))
    (first, _), (second, _) = traces
    if first != second:
        raise EnvCheckFailed(f"env {env_id!r}: two resets with seed {seed} and the same actions "
                             f"diverge ({_first_difference(first, second)}); draw all "
                             "randomness from self.np_random")
