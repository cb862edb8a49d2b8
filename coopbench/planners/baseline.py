"""The floor and the ceiling of every benchmark: a uniform-random and a scripted expert planner."""

from __future__ import annotations

from coopbench.core.types import PlanResult
from coopbench.envs.base import LanguageEnv
from coopbench.planners.base import Planner


class RandomPlanner(Planner):
    """Each agent picks uniformly among the actions legal now (`action_options`)."""

    def act(self, env: LanguageEnv) -> PlanResult:
        joint = {}
        for agent in env.agents:
            options = env.action_options(agent)
            choice = options[int(self.rng.integers(len(options)))]
            joint[agent] = env.parse(agent, choice)
        return PlanResult(joint=joint)


class ExpertPlanner(Planner):
    """The env's scripted expert (`expert_joint()`): an upper-bound baseline."""

    def act(self, env: LanguageEnv) -> PlanResult:
        return PlanResult(joint=env.expert_joint())
