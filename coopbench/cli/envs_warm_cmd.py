"""`coopbench envs warm`: precompute Overcooked-AI motion planners into the user cache.

Worth running once before a parallel matrix, so workers read finished planners instead of
racing to build them (the cache is safe under races anyway; this only saves time).
"""

from __future__ import annotations

import time

import typer

from coopbench.cli._common import console
from coopbench.cli.registry_cmds import envs_app


@envs_app.command("warm")
def warm(
    layout: list[str] = typer.Option(
        None, "--layout", "-l",
        help="Layout to prepare (repeatable); default: the five classic layouts.",
    ),
    featurized: bool = typer.Option(
        False, "--featurized",
        help="Also build the medium-level action manager used by obs_type='featurized'.",
    ),
) -> None:
    """Build and cache motion planners for Overcooked layouts (both settings)."""
    from coopbench.envs.overcooked import cache
    from coopbench.envs.overcooked.kitchen import Kitchen
    from coopbench.envs.overcooked.layouts import CLASSIC_LAYOUTS, build_mdp, make_setting

    names = layout or list(CLASSIC_LAYOUTS.values())
    names = [CLASSIC_LAYOUTS.get(n, n) for n in names]
    console.print(f"cache: {cache.cache_dir()}")
    for name in names:
        started = time.perf_counter()
        for setting in ("classic", "read"):
            spec = make_setting(setting, name, action_level="primitive")
            mdp = build_mdp(name, spec)
            Kitchen(mdp).mp  # noqa: B018  (builds or loads the planner)
            cache.motion_planner(mdp, [])
            if featurized:
                cache.medium_level_manager(mdp)
        console.print(f"  {name:<28} ready in {time.perf_counter() - started:5.2f} s")
