"""Compare two runs of one matrix episode by episode: same actions, success, query rounds?

Usage: python results/remote-parity/parity.py RUN_A RUN_B > table.md

Episodes are matched by (env, planner, seed, episode). "Same actions" means equal trajectory
digests (the start state, every executed joint action and every next state hashed, see
`EpisodeResult.trajectory`). Prints a Markdown table per planner and the pairs that differ.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from coopbench.runner.store import RunStore


def episodes(run: str) -> dict[tuple[str, str, int, int], object]:
    found, _ = RunStore(Path(run)).read_episodes()
    return {(e.env, e.planner, e.seed, e.episode): e for e in found if e.error is None}


def main(run_a: str, run_b: str) -> int:
    a, b = episodes(run_a), episodes(run_b)
    shared = sorted(set(a) & set(b))
    per_planner: dict[str, list[tuple]] = defaultdict(list)
    for key in shared:
        per_planner[key[1]].append(key)
    print(f"A = `{run_a}`, B = `{run_b}`; {len(shared)} episodes in both\n")
    print("| planner | pairs | same actions | same success | success A | success B "
          "| query rounds A | query rounds B | rounds B / A |")
    print("|---|---|---|---|---|---|---|---|---|")
    differing = []
    for planner, keys in sorted(per_planner.items()):
        same = sum(a[k].trajectory == b[k].trajectory for k in keys)
        same_success = sum(a[k].success == b[k].success for k in keys)
        qa = sum(a[k].llm_queries for k in keys)
        qb = sum(b[k].llm_queries for k in keys)
        print(f"| {planner} | {len(keys)} | {same} | {same_success} "
              f"| {sum(a[k].success for k in keys)} | {sum(b[k].success for k in keys)} "
              f"| {qa} | {qb} | {qb / qa if qa else float('nan'):.3f} |")
        differing += [k for k in keys if a[k].trajectory != b[k].trajectory]
    if differing:
        print("\nEpisodes whose actions differ (env, planner, seed):\n")
        for key in differing:
            env, planner, seed, _ = key
            print(f"- {env}, {planner}, seed {seed}: {a[key].interaction_steps} vs "
                  f"{b[key].interaction_steps} steps")
    missing = sorted(set(a) ^ set(b))
    if missing:
        print(f"\n{len(missing)} episodes are in only one run: {missing}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    sys.exit(main(sys.argv[1], sys.argv[2]))
