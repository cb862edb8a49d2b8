"""Registers the built-in `overcooked/...` env ids (strings only: importing this is cheap).

For each classic layout: `<name>-v0` (classic, primitive), `<name>-skills-v0` (classic,
skills), `<name>-read-v0` (ReAd, primitive), `<name>-read-skills-v0` (ReAd, skills); and
`overcooked/layout-v0` for any other shipped layout (`layout=<name>`).
"""

from __future__ import annotations

from coopbench.core.caps import EnvCaps
from coopbench.core.registry import Registry
from coopbench.envs.overcooked.layouts import CLASSIC_LAYOUTS, READ_CAPS

ENTRY = "coopbench.envs.overcooked.env:OvercookedEnv"
# both cooks see the whole kitchen; setting and action level are kwargs, not capabilities
CAPS = EnvCaps(agents=2, partial_obs=False)


def register(registry: Registry) -> None:
    """Called once by `coopbench.envs.registry` the first time it is read."""
    for name, layout in CLASSIC_LAYOUTS.items():
        cap = READ_CAPS[layout]
        variants = (
            ("", "classic", "primitive",
             f"Overcooked-AI {name}: 3-onion soups, 400 ticks, primitive actions"),
            ("-skills", "classic", "skills",
             f"Overcooked-AI {name}: 3-onion soups, 400 ticks, motion-planned skills"),
            ("-read", "read", "primitive",
             f"Overcooked-AI {name}, ReAd setting: deliver one 2-onion soup within {cap} steps"),
            ("-read-skills", "read", "skills",
             f"Overcooked-AI {name}, ReAd setting with skills: one soup within {cap} skill steps"),
        )
        for suffix, setting, level, text in variants:
            registry.register(
                f"overcooked/{name}{suffix}-v0", ENTRY, description=text,
                caps=CAPS,
                layout=layout, setting=setting, action_level=level,
            )
    registry.register(
        "overcooked/layout-v0", ENTRY,
        description="Overcooked-AI on any shipped two-player layout (layout=<name>, "
                    "setting=classic|read, action_level=primitive|skills)",
        caps=CAPS,
        setting="classic", action_level="primitive",
    )
