"""Oracles for the simulated LLM, built from the env's scripted expert for one request.

The sim model answers `oracle.expert` (the expert's plan in the planner's reply format) or,
with its noise probability, one of `oracle.alternatives`: here, random legal plans that differ
from the expert's, so a noisy answer is always well-formed but usually unhelpful.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from coopbench.agents.replies import EXECUTE, PROCEED, format_joint, format_own
from coopbench.core.types import Action
from coopbench.envs.base import LanguageEnv
from coopbench.llm.base import Oracle


def random_joint(
    env: LanguageEnv, rng: np.random.Generator, agents: list[str] | None = None
) -> dict[str, str]:
    """One uniformly random legal action text per agent."""
    joint = {}
    for agent in agents if agents is not None else env.agents:
        options = env.action_options(agent)
        joint[agent] = options[int(rng.integers(len(options)))]
    return joint


def joint_oracle(
    env: LanguageEnv,
    expert: Mapping[str, Action],
    rng: np.random.Generator,
    *,
    n_alternatives: int = 4,
    keyword: str = EXECUTE,
    preface: str = "",
    agents: list[str] | None = None,
) -> Oracle:
    """Expert joint plan plus up to `n_alternatives` distinct random legal joint plans."""
    order = agents if agents is not None else list(env.agents)
    expert_texts = {a: expert[a].text for a in order}
    alternatives: list[str] = []
    for _ in range(n_alternatives * 4):
        if len(alternatives) >= n_alternatives:
            break
        joint = random_joint(env, rng, order)
        if joint == expert_texts:
            continue
        reply = format_joint(joint, keyword, preface)
        if reply not in alternatives:
            alternatives.append(reply)
    return Oracle(format_joint(expert_texts, keyword, preface), tuple(alternatives))


def own_oracle(
    env: LanguageEnv,
    agent: str,
    expert: Action,
    rng: np.random.Generator,
    *,
    n_alternatives: int = 4,
    keyword: str = PROCEED,
    preface: str = "",
) -> Oracle:
    """The expert's action for `agent` plus other legal actions of that agent."""
    others = [o for o in env.action_options(agent) if o != expert.text]
    picked = rng.permutation(len(others))[:n_alternatives] if others else []
    alternatives = tuple(format_own(agent, others[int(i)], keyword, preface) for i in picked)
    return Oracle(format_own(agent, expert, keyword, preface), alternatives)


def reflection_oracle(problem: str) -> Oracle:
    """A Reflexion note naming the failure in `problem` (its last line before the request)."""
    first = problem.splitlines()[-2] if "\n" in problem else problem
    return Oracle(
        f"Reflection: {first.strip()} Next time choose only actions that are "
        "available now and that respect the task rules."
    )
