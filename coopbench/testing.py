"""`check_env` and `check_planner`: one call each that tells a plug-in author whether
coopbench can use their env or planner.

    >>> from coopbench.testing import check_env, check_planner
    >>> check_env("meetgrid/meet-v0")                      # doctest: +SKIP
    >>> check_planner("central-v0", "meetgrid/meet-v0")    # doctest: +SKIP

It runs, in order: the static contract (`coopbench.envs.validate.check_contract`),
PettingZoo's parallel and AEC conformance tests, exact snapshot/restore (planners such as
ReAd rewind the env to try actions), and whole-trajectory determinism (results are only
reproducible if the same seed and actions give the same episode). A failure raises
`EnvCheckFailed` (an `AssertionError`, so pytest shows it as a test failure) or the
contract's one-line `PluginEnvError`.

`check_planner` plays whole episodes and holds the planner to five rules, each failure one
`PlannerCheckFailed` line naming the planner, the env and the rule (see its docstring).
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from coopbench.envs.base import normalise_text
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
    _check_action_options(factory(), env_id, seed, steps)  # before PettingZoo's tests use them
    from pettingzoo.test import api_test, parallel_api_test
    from pettingzoo.utils.conversions import parallel_to_aec

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # PettingZoo warns about optional API it probes
        parallel_api_test(factory(), num_cycles=steps)
        api_test(parallel_to_aec(factory()), num_cycles=steps)
    _check_snapshot_restore(factory(), env_id, seed, steps)
    _check_determinism(factory, env_id, seed, steps)


def _check_action_options(env: Any, env_id: str, seed: int, steps: int) -> None:
    """Every option offered is in the agent's vocabulary and parses to its own index there."""
    rng = np.random.default_rng(seed)
    try:
        env.reset(seed=seed)
    except Exception as exc:  # often the action mask of an index past the vocabulary
        for agent in env.possible_agents:
            _check_agent_options(env, env_id, agent)  # names the agent where it can
        raise EnvCheckFailed(f"env {env_id!r}: rule reset: reset(seed={seed}) raised "
                             f"{type(exc).__name__}: {' '.join(str(exc).split())}") from None
    for _ in range(steps):
        if not env.agents:
            return
        joint = {}
        for agent in env.agents:
            options = _check_agent_options(env, env_id, agent)
            joint[agent] = options[int(rng.integers(len(options)))]
        env.step(joint)


def _check_agent_options(env: Any, env_id: str, agent: str) -> list[str]:
    """The agent's options now, each checked against its vocabulary and `parse`."""
    from coopbench.core.types import ParseError

    def fail(rule: str, problem: str) -> EnvCheckFailed:
        return EnvCheckFailed(f"env {env_id!r}, agent {agent!r}: rule {rule}: {problem}")

    vocab = [normalise_text(str(t)) for t in env.vocabulary(agent)]
    try:
        options = env.action_options(agent)
    except Exception as exc:  # an index past the vocabulary, typically
        raise fail("action-options", f"action_options raised {type(exc).__name__}: "
                   f"{' '.join(str(exc).split())}; every legal index must be a "
                   f"position in its {len(vocab)}-action vocabulary") from None
    for option in options:
        if normalise_text(str(option)) not in vocab:
            raise fail("options-in-vocabulary", f"action_options offers {option!r}, "
                       f"which is not in vocabulary({agent!r})")
        try:
            action = env.parse(agent, option)
        except ParseError as exc:
            raise fail("options-parse", f"parse refused the offered option {option!r} "
                       f"({' '.join(str(exc).split())[:120]})") from None
        if not (0 <= action.index < len(vocab)
                and vocab[action.index] == normalise_text(action.text)):
            raise fail("action-index", f"parse({option!r}) gave index {action.index}, "
                       f"not the position of {action.text!r} in its {len(vocab)}-action "
                       "vocabulary")
    return options


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


class PlannerCheckFailed(AssertionError):
    """A planner breaks a rule the runner relies on; the message names the rule."""


PLANNER_RULES = ("critic-request", "no-env-mutation", "query-cap", "wait-on-unparsable",
                 "seed-determinism")
GARBAGE = "I am not sure what to do."  # no action of any grammar in it


def check_planner(
    planner: str | Callable[[], Any], env: str | Callable[[], Any], *, llm: str | None = None,
    critic: Any = None, seed: int = 0, max_steps: int = 8,
) -> None:
    """Check a planner id or zero-argument factory on an env id or factory. Rules, in order:

    - critic-request: `critic_request()` is None or a `CriticRequest` (None for an id registered
      without `needs_critic`); a planner that asks for a critic refuses, with a
      `CoopbenchError`, a reset without one (pass `critic=`).
    - no-env-mutation: `reset` and `act` leave the env as they found it (rewinds included):
      only the runner steps it.
    - query-cap: each step's `llm_queries` is the number of LLM calls `act` made, and never
      above the planner's `max_queries_per_step`.
    - wait-on-unparsable: when every reply is unparsable text, each agent WAITs.
    - seed-determinism: two episodes with one seed are the same, step by step.

    `llm` is the model spec for planners that need one (default: the simulated expert with
    30% noise); episodes are capped at `max_steps` interaction steps.
    """
    from coopbench.core.errors import CoopbenchError
    from coopbench.core.types import CriticRequest

    make_planner, make_env = _planner_factory(planner), _factory(env)
    name = planner if isinstance(planner, str) else getattr(planner, "__name__", repr(planner))
    sample = make_env()
    env_id = getattr(getattr(sample, "spec", None), "id", None) or type(sample).__name__

    def fail(rule: str, problem: str) -> PlannerCheckFailed:
        return PlannerCheckFailed(f"planner {name!r} on {env_id}: rule {rule}: {problem}")

    request = make_planner().critic_request()
    if isinstance(planner, str) and request is not None:
        from coopbench import planners

        if not planners.registry.spec(planner).caps.needs_critic:
            raise fail("critic-request", "it asks for a critic but is registered without "
                       "caps needs_critic, so the runner would resolve none for it")
    if request is not None and not isinstance(request, CriticRequest):
        raise fail("critic-request", f"critic_request() returned {type(request).__name__}, "
                   "not a CriticRequest or None")
    if request is not None:
        probe = make_env()
        probe.reset(seed=seed)
        try:
            make_planner().reset(probe, _model(llm), np.random.default_rng(seed))
        except CoopbenchError:
            pass
        else:
            raise fail("critic-request", "it asks for a critic but reset without one went on; "
                       "raise ConfigError naming what is missing")
        if critic is None:
            raise fail("critic-request", "it asks for a critic: pass check_planner(critic=...)")
    first = _checked_episode(make_planner, make_env, llm, critic, seed, max_steps, fail)
    _checked_episode(make_planner, make_env, llm, critic, seed, max_steps, fail,
                     garbage=True)
    second = _checked_episode(make_planner, make_env, llm, critic, seed, max_steps, fail)
    if first != second:
        diff = next((i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b),
                    min(len(first), len(second)))
        raise fail("seed-determinism", f"two episodes with seed {seed} differ at step "
                   f"{diff + 1}; draw randomness from the rng reset hands over")


def _planner_factory(planner: str | Callable[[], Any]) -> Callable[[], Any]:
    if isinstance(planner, str):
        from coopbench import planners

        return lambda: planners.make(planner)
    return planner


def _model(spec: str | None) -> Any:
    from coopbench import llm as llm_layer

    return llm_layer.make(spec or "sim:expert?noise=0.3&seed=0", cache=False)


class _CountingLLM:
    """Counts the calls a planner makes; with `garbage`, every completion is unparsable."""

    def __init__(self, model: Any, garbage: bool = False) -> None:
        self.model, self.garbage, self.calls, self.garbled = model, garbage, 0, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        completion = self.model.complete(*args, **kwargs)
        if self.garbage and not kwargs.get("choices"):
            import dataclasses

            completion = dataclasses.replace(completion, text=GARBAGE)
            self.garbled += 1
        return completion

    def score(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.model.score(*args, **kwargs)


def _env_state(env: Any) -> Any:
    return (np.asarray(env.features()).tolist(), env.describe(), list(env.agents),
            getattr(env, "steps_taken", None))


def _checked_episode(make_planner: Callable[[], Any], make_env: Callable[[], Any],
                     llm: str | None, critic: Any, seed: int, max_steps: int, fail: Any,
                     garbage: bool = False) -> list[Any]:
    """Play one episode under the per-step rules; returns what each step decided and cost."""
    env, planner = make_env(), make_planner()
    model = _CountingLLM(_model(llm), garbage)
    env.reset(seed=seed)
    before = _env_state(env)
    rng = np.random.default_rng([seed, 0])
    if critic is None:
        planner.reset(env, model, rng)
    else:
        planner.reset(env, model, rng, critic=critic)
    if _env_state(env) != before:
        raise fail("no-env-mutation", "reset changed the env; only the runner steps it")
    cap = getattr(getattr(planner, "cfg", None), "max_queries_per_step", None)
    trace = []
    for _ in range(max_steps):
        if not env.agents:
            break
        before, calls, garbled = _env_state(env), model.calls, model.garbled
        plan = planner.act(env)
        if _env_state(env) != before:
            raise fail("no-env-mutation", "act changed the env (restore a rewind before "
                       "returning; only the runner steps it)")
        made = model.calls - calls
        if plan.llm_queries != made:
            raise fail("query-cap", f"a step reported {plan.llm_queries} LLM queries but made "
                       f"{made} calls")
        if cap is not None and made > cap:
            raise fail("query-cap", f"a step made {made} LLM calls, above its cap of {cap}")
        joint = {agent: plan.joint.get(agent) for agent in env.agents}
        if made and model.garbled - garbled == made and any(  # every reply unparsable
            action is None or action.text != env.wait_action(agent).text
            for agent, action in joint.items()
        ):
            shown = {a: getattr(x, "text", None) for a, x in joint.items()}
            raise fail("wait-on-unparsable", f"every reply was unparsable and it played "
                       f"{shown}, not every agent's WAIT")
        trace.append(({a: getattr(x, "text", None) for a, x in joint.items()},
                      plan.llm_queries, plan.parse_failures))
        env.step(dict(plan.joint))
    return trace
