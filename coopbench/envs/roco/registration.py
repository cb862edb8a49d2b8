"""Registers the built-in `roco/...` env ids (strings only: importing this is cheap)."""

from __future__ import annotations

from coopbench.core.caps import EnvCaps
from coopbench.core.registry import Registry

SWEEP = {
    "y1g1": "1 yellow + 1 green among 7 cubes",
    "y1g2": "1 yellow + 2 green among 7 cubes",
    "y2g2": "2 yellow + 2 green among 7 cubes",
    "y2g3": "2 yellow + 3 green among 9 cubes",
    "y3g3": "3 yellow + 3 green among 9 cubes",
}
SANDWICH = {"recipe1": 3, "recipe2": 5, "recipe3": 7, "recipe4": 9}
SORT_DISTANCE = {"level1": 3, "level2": 4, "level3": 5, "level4": 10, "level5": 11}
# Seeds vary the scene by default: objects move up to 1 cm and turn up to 5 degrees. The
# expert solves every level on 100 seeds at 0.5; at 1.0 two neighbouring Sweep cubes (14 cm
# apart in the level) can come close enough that the dustpan no longer fits between them.
DEFAULT_JITTER = 0.5


def register(registry: Registry) -> None:
    """Called once by `coopbench.envs.registry` the first time it is read."""
    defaults = {"jitter": DEFAULT_JITTER, "max_steps": 15}
    for level, what in SWEEP.items():
        registry.register(
            f"roco/sweep-{level}-v0",
            "coopbench.envs.roco.sweep:SweepFloorEnv",
            description=f"Sweep Floor (pymunk 2D): broom and dustpan clear {what}.",
            caps=EnvCaps(agents=2, partial_obs=False, task="sweep"),
            level=level,
            **defaults,
        )
    for level, items in SANDWICH.items():
        registry.register(
            f"roco/sandwich-{level}-v0",
            "coopbench.envs.roco.sandwich:MakeSandwichEnv",
            description=f"Make Sandwich (pymunk 2D): two arms stack a {items}-item recipe.",
            caps=EnvCaps(agents=2, partial_obs=True, task="sandwich"),
            level=level,
            **defaults,
        )
    for level, distance in SORT_DISTANCE.items():
        registry.register(
            f"roco/sort-{level}-v0",
            "coopbench.envs.roco.sort:SortCubesEnv",
            description=(
                f"Sort Cubes (pymunk 2D): three arms hand cubes to their panels "
                f"(summed distance {distance} panels)."
            ),
            caps=EnvCaps(agents=3, partial_obs=True, task="sort"),
            level=level,
            **defaults,
        )
