"""The planner contract: decide one joint action per environment step.

A planner is reset once per episode with the env, an LLM (or None), a seeded generator and,
for planners that need one, an advantage critic, then asked to `act` once per interaction
step. Planners never build their LLM or critic: the runner and the CLI resolve both (the
critic from `critic_request()`) and hand them in, so a planner depends on neither layer.
`act` returns a `PlanResult` carrying the joint action and what deciding it cost (LLM query
rounds, feedback rounds, usage, transcript). A planner that finds no acceptable plan within
its caps returns every agent's WAIT: the step is consumed without acting, as in RoCo.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from coopbench.core.types import Action, CriticRequest, PlanResult
from coopbench.envs.base import LanguageEnv


class AdvantageCritic(Protocol):
    """What planners use of a ReAd critic (`coopbench.critics.critic.Critic` is one)."""

    agents: list[str]
    gamma: float
    return_scale: float

    def value(self, features: np.ndarray) -> float: ...

    def q(self, features: np.ndarray, joint: Mapping[str, Action]) -> float: ...

    def q_many(
        self, features: np.ndarray, joints: Sequence[Mapping[str, Action]]
    ) -> np.ndarray: ...


class Planner(ABC):
    """Base class. Capabilities (needs an LLM, a critic, ...) are declared at registration
    as `PlannerCaps`, not here: the runner reads the registry, never the class."""

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.llm: Any = None
        self.critic: AdvantageCritic | None = None
        self.rng = np.random.default_rng(0)
        # how its LLM was asked ("constrained" | "free"), set at reset; "" without an LLM
        self.decoding = ""

    def critic_request(self) -> CriticRequest | None:
        """Which critic this planner wants, if any (from its config)."""
        return None

    def reset(
        self,
        env: LanguageEnv,
        llm: Any,
        rng: np.random.Generator,
        critic: AdvantageCritic | None = None,
    ) -> None:
        self.llm = llm
        self.rng = rng
        self.critic = critic

    @abstractmethod
    def act(self, env: LanguageEnv) -> PlanResult:
        """Choose the joint action for the current state of `env`."""

    def wait_all(self, env: LanguageEnv) -> dict:
        return {a: env.wait_action(a) for a in env.agents}
