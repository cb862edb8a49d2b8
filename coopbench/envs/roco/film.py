"""Animate expert episodes with the arms' motion, for the docs.

Run: .venv/bin/python -m coopbench.envs.roco.film [--out docs/img]

`coopbench play` draws one frame per interaction step; this also draws frames while the arms
move (every few physics substeps), which shows how each action is carried out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from coopbench import envs
from coopbench.core.animation import write_gif

EPISODES = {
    "roco-sweep.gif": "roco/sweep-y2g2-v0",
    "roco-sandwich.gif": "roco/sandwich-recipe2-v0",
    "roco-sort.gif": "roco/sort-level5-v0",
}


def film(env_id: str, path: Path, *, seed: int = 0, every: int = 10) -> int:
    """Play the expert on `env_id` and write the motion to `path`; returns the frame count."""
    env = envs.make(env_id, jitter=1.0, render_mode="rgb_array")
    env.reset(seed=seed)
    frames = env.film(every=every)
    frames.append(env.render())
    while env.agents:
        env.step(env.expert_joint())
        frames.append(env.render())
    frames += [frames[-1]] * 3  # linger on the outcome
    write_gif(frames, path, fps=12)
    return len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img"), help="output folder")
    args = parser.parse_args()
    for name, env_id in EPISODES.items():
        count = film(env_id, args.out / name)
        print(f"{args.out / name}: {env_id}, {count} frames")


if __name__ == "__main__":
    main()
