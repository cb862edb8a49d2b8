"""The planner contract: decide one joint action per environment step.

A planner is reset once per episode with the env, an LLM (or None) and a seeded generator,
then asked to `act` once per interaction step. It returns a `PlanResult` carrying the joint
action and what deciding it cost (LLM query rounds, feedback rounds, usage, transcript).
A planner that finds no acceptable plan within its caps returns every agent's WAIT: the
step is consumed without acting, as in RoCo.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from coopbench.core.types import PlanResult
from coopbench.envs.base import LanguageEnv


class Planner(ABC):
    """Base class; the class attributes are the capability flags the runner reads."""

    needs_llm: ClassVar[bool] = True
    needs_critic: ClassVar[bool] = False
    uses_partial_obs: ClassVar[bool] = False
    mode: ClassVar[str] = "joint"  # "joint" (one plan for all) or "sequential" (agent by agent)

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.llm: Any = None
        self.rng = np.random.default_rng(0)

    def reset(self, env: LanguageEnv, llm: Any, rng: np.random.Generator) -> None:
        self.llm = llm
        self.rng = rng

    @abstractmethod
    def act(self, env: LanguageEnv) -> PlanResult:
        """Choose the joint action for the current state of `env`."""

    def wait_all(self, env: LanguageEnv) -> dict:
        return {a: env.wait_action(a) for a in env.agents}
