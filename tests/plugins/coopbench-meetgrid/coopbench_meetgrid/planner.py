"""A planner plug-in: Alice walks to Bob while Bob waits (no LLM)."""

from __future__ import annotations

from coopbench.core.types import PlanResult
from coopbench.planners import Planner


class WalkerPlanner(Planner):
    """Registered with `caps={"needs_llm": False, ...}` (see __init__.py): no LLM."""

    def act(self, env):
        (r, c), (tr, tc) = env.pos["Alice"], env.pos["Bob"]
        if r != tr:
            text = "move south" if tr > r else "move north"
        elif c != tc:
            text = "move east" if tc > c else "move west"
        else:
            text = "wait"
        return PlanResult(joint={"Alice": env.parse("Alice", text), "Bob": env.wait_action("Bob")})
