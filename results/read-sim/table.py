"""Per env x planner: SR, NQ per episode and per success, ES, and the ReAd-vs-baseline verdicts.

Usage: python results/read-sim/table.py <run dir> [<run dir> ...] > table.md

A run dir written `DIR#PLANNER=LABEL` shows that dir's PLANNER episodes as LABEL (two
settings of one planner from two runs, side by side).
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path

PAIRS = (("read/read-j-v0", "llm/central-v0"), ("read/read-s-v0", "llm/roco-v0"),
         # issue 16 (results/read-local): the scored planner against each of the others
         ("read/read-j-scored-v0", "llm/central-v0"),
         ("read/read-j-scored-v0", "read/read-j-v0"),
         ("read/read-j-scored-v0", "baseline/critic-greedy-v0"),
         ("read/read-j-scored-v0", "llm/llm-score-v0"))


def load(dirs: list[str]) -> dict[tuple[str, str], list[dict]]:
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for arg in dirs:
        d, _, rename = arg.partition("#")
        old, _, new = rename.partition("=")
        for line in (Path(d) / "episodes.jsonl").read_text().splitlines():
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                continue
            if e.get("error") is None:
                planner = new if rename and e["planner"] == old else e["planner"]
                cells[(e["env"], planner)].append(e)
    return cells


def stats(eps: list[dict]) -> dict[str, float]:
    n = len(eps)
    succ = sum(bool(e["success"]) for e in eps)
    nq = [e["llm_queries"] for e in eps]
    mean = sum(nq) / n
    se = math.sqrt(sum((x - mean) ** 2 for x in nq) / (n - 1) / n) if n > 1 else 0.0
    return {"n": n, "sr": succ / n, "succ": succ, "nq": mean, "nq_se": se,
            "nq_succ": sum(nq) / succ if succ else math.inf,
            "es": sum(e["interaction_steps"] for e in eps) / n,
            "pf": sum(e["parse_failures"] for e in eps) / n,
            "vf": sum(e["verify_failures"] for e in eps) / n,
            # distinct episodes (by their trajectory digest, where the run recorded one)
            "distinct": len({e.get("trajectory") or json.dumps(e.get("seed")) for e in eps})}


def main() -> None:
    cells = load(sys.argv[1:])
    envs = sorted({env for env, _ in cells})
    print("| env | planner | seeds (distinct episodes) | SR | NQ/episode (± SE) | NQ per success "
          "| ES | parse fails/ep | verify fails/ep |")
    print("|---|---|---|---|---|---|---|---|---|")
    table = {}
    for env in envs:
        for planner in sorted(p for e, p in cells if e == env):
            s = stats(cells[(env, planner)])
            table[(env, planner)] = s
            per = "∞" if math.isinf(s["nq_succ"]) else f"{s['nq_succ']:.1f}"
            print(f"| {env} | {planner} | {s['n']} ({s['distinct']}) | {s['sr']:.2f} "
                  f"| {s['nq']:.1f} ± {s['nq_se']:.1f} | {per} | {s['es']:.1f} | {s['pf']:.1f} "
                  f"| {s['vf']:.1f} |")
    print()
    print("| env | comparison | SR higher (or equal) | fewer NQ per success |")
    print("|---|---|---|---|")
    for env in envs:
        for ours, base in PAIRS:
            if (env, ours) in table and (env, base) in table:
                a, b = table[(env, ours)], table[(env, base)]
                print(f"| {env} | {ours.split('/')[1]} vs {base.split('/')[1]} | "
                      f"{_order(a['sr'], b['sr'])} ({a['sr']:.2f} vs {b['sr']:.2f}) | "
                      f"{'yes' if a['nq_succ'] < b['nq_succ'] else 'no'} "
                      f"({a['nq_succ']:.1f} vs {b['nq_succ']:.1f}) |")


def _order(a: float, b: float) -> str:
    return "yes" if a > b else "equal" if a == b else "no"


if __name__ == "__main__":
    main()
