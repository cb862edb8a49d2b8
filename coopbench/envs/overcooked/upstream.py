"""Overcooked-AI upstream: one quiet place that imports `overcooked_ai_py` (the real game)
and re-exports what we use (`upstream`, not `sim`: `coopbench/llm/sim.py` is the simulated LLM).

overcooked-ai 1.1.0 imports gym at package import time, which prints an "unmaintained" notice
to stderr; users of coopbench did not ask for gym, so the notice is swallowed here.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import overcooked_ai_py  # noqa: F401  (registers gym's Overcooked-v0; harmless)
    from overcooked_ai_py.mdp.actions import Action as OCAction
    from overcooked_ai_py.mdp.actions import Direction
    from overcooked_ai_py.mdp.overcooked_env import OvercookedEnv as RawOvercookedEnv
    from overcooked_ai_py.mdp.overcooked_mdp import (
        ObjectState,
        OvercookedGridworld,
        OvercookedState,
        PlayerState,
        Recipe,
        SoupState,
    )
    from overcooked_ai_py.planning.planners import (
        NO_COUNTERS_PARAMS,
        MediumLevelActionManager,
        MotionPlanner,
    )
    from overcooked_ai_py.static import LAYOUTS_DIR

__all__ = [
    "LAYOUTS_DIR",
    "Direction",
    "MediumLevelActionManager",
    "MotionPlanner",
    "NO_COUNTERS_PARAMS",
    "OCAction",
    "ObjectState",
    "OvercookedGridworld",
    "OvercookedState",
    "PlayerState",
    "Recipe",
    "RawOvercookedEnv",
    "SoupState",
    "apply_recipes",
]


def apply_recipes(config: dict) -> None:
    """Make `config` the process-global Recipe configuration, if it is not already.

    overcooked-ai keeps recipe values and cook times on the `Recipe` class, so the last
    gridworld built in a process wins. Every env calls this before it steps, resets or reads
    cook times, so envs of different settings can live in one process. `Recipe.configure`
    stores the dict itself, which makes the identity test below exact and cheap.
    """
    if Recipe._conf is not config:
        Recipe.configure(config)
