"""Wrapped vs raw Overcooked-AI stepping speed, measured in one run on the same actions.

    .venv/bin/python benchmarks/perf/overcooked_step.py [--layout cramped_room] [--episodes 20]

With `--expert`, instead prints what the scripted greedy pair achieves on the classic layouts
(soups in 400 ticks; ReAd: interaction steps and ticks to the first delivery).

Prints steps/s of raw `overcooked_ai_py` `OvercookedEnv.step` and of coopbench's wrapped env
(primitive actions as integer indices, default compact observation; no text, no features),
and their ratio (target >= 0.9). Also prints the ratio with the lossless observation, for
reference. Trials alternate between the two and the best of each is kept, which damps noise
from other processes on the machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from coopbench.envs.overcooked import cache
from coopbench.envs.overcooked.env import OvercookedEnv
from coopbench.envs.overcooked.layouts import CLASSIC_LAYOUTS
from coopbench.envs.overcooked.upstream import OCAction, RawOvercookedEnv, apply_recipes


def raw_rate(mdp, episodes: list[np.ndarray]) -> float:
    env = RawOvercookedEnv.from_mdp(mdp, horizon=400, info_level=0)
    env._mp = cache.motion_planner(mdp, [])  # keep overcooked-ai from writing site-packages
    table = OCAction.INDEX_TO_ACTION
    apply_recipes(mdp.recipe_config)
    start = time.perf_counter()
    for acts in episodes:
        env.reset(regen_mdp=False)
        for a, b in acts:
            env.step((table[a], table[b]))
    return sum(len(e) for e in episodes) / (time.perf_counter() - start)


def wrapped_rate(env: OvercookedEnv, episodes: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for acts in episodes:
        env.reset(seed=0)
        for a, b in acts.tolist():
            env.step({"Alice": a, "Bob": b})
    return sum(len(e) for e in episodes) / (time.perf_counter() - start)


def expert_table() -> None:
    print(f"{'layout':<24} {'setting':<8} {'level':<10} {'soups':>5} {'steps':>6} {'ticks':>6}")
    for name, layout in CLASSIC_LAYOUTS.items():
        for setting in ("classic", "read"):
            for level in ("primitive", "skills"):
                env = OvercookedEnv(layout, setting, level)
                env.reset(seed=0)
                while env.agents:
                    env.step(env.expert_joint())
                print(f"{name:<24} {setting:<8} {level:<10} {env.soups_delivered:>5} "
                      f"{env.steps_taken:>6} {env.ticks:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layout", default="cramped_room", choices=sorted(CLASSIC_LAYOUTS))
    parser.add_argument("--episodes", type=int, default=10, help="400-step episodes per trial")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--expert", action="store_true", help="print the expert's results")
    args = parser.parse_args()
    if args.expert:
        expert_table()
        return
    rng = np.random.default_rng(0)
    episodes = [rng.integers(0, 6, size=(400, 2)) for _ in range(args.episodes)]
    layout = CLASSIC_LAYOUTS[args.layout]
    env = OvercookedEnv(layout)
    lossless = OvercookedEnv(layout, obs_type="lossless")
    raw, wrapped, wrapped_lossless = [], [], []
    for _ in range(args.trials):
        raw.append(raw_rate(env.mdp, episodes))
        wrapped.append(wrapped_rate(env, episodes))
        wrapped_lossless.append(wrapped_rate(lossless, episodes[:2]))
    r, w, wl = max(raw), max(wrapped), max(wrapped_lossless)
    print(f"layout {layout}: {args.trials} trials x {args.episodes} episodes x 400 steps")
    print(f"raw OvercookedEnv.step          {r:10.0f} steps/s")
    print(f"wrapped (compact obs)           {w:10.0f} steps/s")
    print(f"wrapped (lossless obs)          {wl:10.0f} steps/s")
    print(f"ratio wrapped/raw               {w / r:10.2f}   (target >= 0.9)")
    print(f"ratio wrapped-lossless/raw      {wl / r:10.2f}   (for reference)")


if __name__ == "__main__":
    main()
