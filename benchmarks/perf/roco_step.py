"""roco speed: physics substeps/s and CPU seconds per expert episode, per task.

Run: .venv/bin/python benchmarks/perf/roco_step.py [--episodes 5]

For the hardest level of each task (sweep y3g3, sandwich recipe4, sort level5, jitter on):

- raw: `space.step` alone on the task's initial scene, the reference measured in this run;
- env: physics substeps per CPU second while the expert plays whole episodes, i.e. including
  verification (IK, collision queries), path checks, planning and snapshots; the ratio env/raw
  is the share of time spent in pymunk's own stepping;
- episode: CPU seconds per expert episode, against the 2 s budget (ratio < 1 is within it).
"""

from __future__ import annotations

import argparse
import time

from coopbench import envs

HARDEST = {
    "sweep": "roco/sweep-y3g3-v0",
    "sandwich": "roco/sandwich-recipe4-v0",
    "sort": "roco/sort-level5-v0",
}
BUDGET_S = 2.0


def raw_steps_per_s(env_id: str, steps: int = 20000) -> float:
    env = envs.make(env_id, jitter=1.0)
    env.reset(seed=0)
    space, dt = env.world.space, env.world.dt
    started = time.process_time()
    for _ in range(steps):
        space.step(dt)
    return steps / (time.process_time() - started)


def expert_episodes(env_id: str, episodes: int) -> tuple[float, float, int]:
    """(CPU s per episode, substeps per CPU s, successes)."""
    env = envs.make(env_id, jitter=1.0)
    cpu = 0.0
    substeps = 0
    wins = 0
    for seed in range(episodes):
        env.reset(seed=seed)
        started = time.process_time()
        while env.agents:
            env.step(env.expert_joint())
        cpu += time.process_time() - started
        substeps += env.world.substeps
        wins += int(env.success())
    return cpu / episodes, substeps / cpu, wins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=5, help="expert episodes per task")
    args = parser.parse_args()
    print(f"{'task':<9} {'env id':<26} {'raw sub/s':>10} {'env sub/s':>10} {'env/raw':>8} "
          f"{'s/episode':>10} {'vs 2 s':>7} {'solved':>7}")
    for task, env_id in HARDEST.items():
        raw = raw_steps_per_s(env_id)
        per_episode, env_rate, wins = expert_episodes(env_id, args.episodes)
        print(f"{task:<9} {env_id:<26} {raw:>10,.0f} {env_rate:>10,.0f} {env_rate / raw:>8.3f} "
              f"{per_episode:>10.3f} {per_episode / BUDGET_S:>7.3f} {wins:>4}/{args.episodes}")


if __name__ == "__main__":
    main()
