"""Layouts and the two game settings (classic and ReAd), resolved to real gridworlds.

Kept free of heavy imports except where a gridworld is actually built, so the registration
module can import the names and caps cheaply.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from functools import cache

from coopbench.core.errors import CoopbenchError

#: The five classic layouts (Carroll et al. 2019): id name -> layout file shipped in 1.1.0.
#: `counter_circuit` in 1.1.0 is a different multi-recipe layout; the classic one is
#: `counter_circuit_o_1order`.
CLASSIC_LAYOUTS: dict[str, str] = {
    "cramped_room": "cramped_room",
    "asymmetric_advantages": "asymmetric_advantages",
    "coordination_ring": "coordination_ring",
    "forced_coordination": "forced_coordination",
    "counter_circuit": "counter_circuit_o_1order",
}

#: ReAd setting step caps. 20 and 25 are the paper's; the others are about 1.3x the primitive
#: steps the scripted expert needs for its first delivery (17, 27, 36; see docs/overcooked.md).
READ_CAPS: dict[str, int] = {
    "cramped_room": 20,
    "forced_coordination": 25,
    "asymmetric_advantages": 25,
    "coordination_ring": 35,
    "counter_circuit_o_1order": 50,
}
DEFAULT_READ_CAP = 50

CLASSIC_HORIZON = 400
SETTINGS = ("classic", "read")
ACTION_LEVELS = ("primitive", "skills")


@dataclass(frozen=True)
class Setting:
    """What a game is: recipe overrides, tick horizon, decision cap and success threshold."""

    name: str  # "classic" | "read"
    horizon: int  # game ticks until the episode ends
    max_steps: int  # interaction steps (decisions) until the episode is truncated
    min_soups: int  # soups delivered for success
    end_on_success: bool  # ReAd: the episode ends at the first delivery

    def overrides(self) -> dict:
        if self.name == "read":
            return {"start_all_orders": [{"ingredients": ["onion", "onion"]}], "cook_time": 2}
        return {}


def make_setting(
    setting: str,
    layout: str,
    *,
    action_level: str,
    horizon: int | None = None,
    max_steps: int | None = None,
    min_soups: int | None = None,
) -> Setting:
    """Defaults per setting, overridable by the env's constructor arguments."""
    if setting not in SETTINGS:
        raise CoopbenchError(f"unknown Overcooked setting {setting!r}; use one of {SETTINGS}")
    if action_level not in ACTION_LEVELS:
        raise CoopbenchError(
            f"unknown action_level {action_level!r}; use one of {', '.join(ACTION_LEVELS)}"
        )
    if setting == "read":
        cap = READ_CAPS.get(layout, DEFAULT_READ_CAP)
        # A ReAd step is one tick at the primitive level (so a longer step cap also means more
        # ticks); skills may take many ticks each.
        steps = max_steps or cap
        ticks = horizon or (steps if action_level == "primitive" else CLASSIC_HORIZON)
        return Setting("read", ticks, steps, min_soups or 1, True)
    ticks = horizon or CLASSIC_HORIZON
    return Setting("classic", ticks, max_steps or ticks, min_soups or 1, False)


@cache
def shipped_layouts() -> tuple[str, ...]:
    """Every layout file shipped with overcooked-ai (names without `.layout`)."""
    from coopbench.envs.overcooked.upstream import LAYOUTS_DIR

    return tuple(sorted(f[: -len(".layout")] for f in os.listdir(LAYOUTS_DIR)
                        if f.endswith(".layout")))


def check_layout(name: str) -> str:
    """`name` if it is a shipped layout, else a CoopbenchError naming close layouts."""
    names = shipped_layouts()
    if name in names:
        return name
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise CoopbenchError(
        f"unknown Overcooked layout {name!r}{hint} ({len(names)} shipped layouts; "
        f"classic: {', '.join(CLASSIC_LAYOUTS.values())})"
    )


def build_mdp(layout: str, setting: Setting):
    """The real `OvercookedGridworld` for `layout` under `setting` (configures recipes)."""
    from coopbench.envs.overcooked.upstream import OvercookedGridworld

    mdp = OvercookedGridworld.from_layout_name(check_layout(layout), **setting.overrides())
    if mdp.num_players != 2:
        raise CoopbenchError(
            f"Overcooked layout {layout!r} has {mdp.num_players} players; coopbench's Overcooked "
            "envs are for two agents (Alice and Bob)"
        )
    if setting.name == "read" and not mdp.get_onion_dispenser_locations():
        raise CoopbenchError(f"layout {layout!r} has no onions, so the ReAd setting cannot apply")
    return mdp
