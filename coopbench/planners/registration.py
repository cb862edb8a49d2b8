"""Registers the built-in planner ids (strings only: importing this is cheap)."""

from __future__ import annotations

from coopbench.registry import Registry

NO_LLM = {"needs_llm": False, "needs_critic": False, "mode": "joint", "partial_obs": False}


def register(registry: Registry) -> None:
    registry.register(
        "baseline/random-v0",
        "coopbench.planners.baseline:RandomPlanner",
        description="Uniform over each agent's legal actions (the floor; no LLM).",
        flags=NO_LLM,
    )
    registry.register(
        "baseline/expert-v0",
        "coopbench.planners.baseline:ExpertPlanner",
        description="The env's scripted expert_joint() (the ceiling; no LLM).",
        flags=NO_LLM,
    )
