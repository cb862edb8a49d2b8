"""Example plug-in for coopbench: the `meetgrid/meet-v0` env and the `meetgrid/walker-v0` planner.

coopbench calls these two functions through the entry points declared in pyproject.toml.
They register strings only, so listing ids never imports the env module.
"""


def register_envs(registry):
    registry.register(
        "meetgrid/meet-v0",
        "coopbench_meetgrid.env:MeetGridEnv",
        description="Two agents on a 5x5 grid must stand on the same cell (example plug-in).",
        caps={"agents": 2, "partial_obs": False},
        size=5,
    )


def register_planners(registry):
    registry.register(
        "meetgrid/walker-v0",
        "coopbench_meetgrid.planner:WalkerPlanner",
        description="Alice walks to Bob while Bob waits (example plug-in, no LLM).",
        caps={"needs_llm": False, "needs_critic": False, "mode": "joint"},
    )
