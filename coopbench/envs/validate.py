"""Static checks of the `LanguageEnv` contract, run before an env's first episode.

A plug-in that breaks the contract (an alias naming no action, no `max_steps`) otherwise
fails deep inside a planner with a traceback; `check_contract` turns each such mistake into
one line that names the env id, what is wrong and how to fix it. It needs no `reset()`:
vocabularies, aliases and the wait action are fixed for an env's life.
"""

from __future__ import annotations

from typing import Any

from coopbench.core.errors import PluginEnvError
from coopbench.envs.base import normalise_text

DOCS = "docs/adding-an-environment.md"

# What planners, critics and the runner call (the `LanguageEnv` protocol plus PettingZoo's).
REQUIRED_METHODS = (
    "reset", "step", "action_space", "observation_space",
    "task_prompt", "describe", "vocabulary", "action_options", "wait_action", "parse",
    "verify", "features", "success", "snapshot", "restore", "expert_joint",
)


def check_contract(env: Any, id: str) -> None:
    """Raise `PluginEnvError` (one line: id, problem, fix) at the first contract breach."""

    def fail(problem: str, fix: str) -> PluginEnvError:
        return PluginEnvError(f"env {id!r}: {problem}; {fix} (see {DOCS})")

    cls = type(env).__name__
    agents = getattr(env, "possible_agents", None)
    if not isinstance(agents, (list, tuple)) or not agents:
        raise fail("possible_agents is missing or empty",
                   f"set {cls}.possible_agents to the list of agent names")
    if not all(isinstance(a, str) for a in agents) or len(set(agents)) != len(agents):
        raise fail(f"possible_agents {list(agents)!r} must be distinct strings",
                   "name each agent once, as text")
    max_steps = getattr(env, "max_steps", None)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps <= 0:
        raise fail(f"max_steps is {max_steps!r}, not a positive int",
                   f"take max_steps in {cls}.__init__ and set self.max_steps = max_steps")
    metadata = getattr(env, "metadata", None)
    if not isinstance(metadata, dict) or not metadata.get("name"):
        raise fail("metadata has no 'name'",
                   f'set {cls}.metadata = {{"name": "<family>_v0", "render_modes": [...]}}')
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(env, m, None))]
    if missing:
        raise fail(f"missing method(s) {', '.join(missing)}",
                   "subclass coopbench.envs.VocabularyEnv or implement the LanguageEnv protocol")
    for agent in agents:
        _check_agent(env, agent, fail)


def _check_agent(env: Any, agent: str, fail: Any) -> None:
    vocab = _call(env, fail, "vocabulary", agent)
    if not isinstance(vocab, (list, tuple)) or not vocab:
        raise fail(f"vocabulary({agent!r}) is empty",
                   "return every action the agent can ever take, as text")
    known = {normalise_text(str(t)) for t in vocab}
    if len(known) != len(vocab):
        raise fail(f"vocabulary({agent!r}) has entries that read the same after normalising",
                   "make every action's text distinct (case and spaces are ignored)")
    if hasattr(env, "text_aliases"):
        aliases = _call(env, fail, "text_aliases", agent)
        for alias, target in dict(aliases).items():
            if normalise_text(str(target)) not in known:
                raise fail(f"text_aliases({agent!r}) maps {alias!r} to {target!r}, "
                           f"which is not in vocabulary({agent!r})",
                           "map each alias to one of the agent's vocabulary texts")
    if hasattr(env, "wait_index"):
        index = _call(env, fail, "wait_index", agent)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(vocab):
            raise fail(f"wait_index({agent!r}) is {index!r}, not an index into its "
                       f"{len(vocab)}-action vocabulary", "return the index of the no-op")
    else:
        wait = _call(env, fail, "wait_action", agent)
        if normalise_text(str(getattr(wait, "text", wait))) not in known:
            raise fail(f"wait_action({agent!r}) is not in vocabulary({agent!r})",
                       "add the no-op to the agent's vocabulary")


def _call(env: Any, fail: Any, method: str, agent: str) -> Any:
    """`env.method(agent)`, with an exception turned into one line (these need no reset)."""
    try:
        return getattr(env, method)(agent)
    except Exception as exc:
        detail = " ".join(str(exc).split())  # one line, whatever the exception says
        raise fail(f"{method}({agent!r}) raised {type(exc).__name__}: {detail}",
                   f"make {method} work before reset(); it must not depend on the state") from exc
