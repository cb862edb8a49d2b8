"""Success per env x critic budget x planner, and whether the LLM term changed the episode.

Usage: .venv/bin/python results/read-budget/table.py <run dir> > results/read-budget/table.md
(or table-llm-data.md from the run of spec-llm-data.yaml: columns a run lacks are left out)

Per (env, budget): each planner's successes of its seeds with the Wilson 95% interval and
LLM query rounds per success; then, per ReAd planner, the seeds on which it played exactly
critic-greedy's episode (same trajectory hash: the same joint action at every step), i.e.
where the LLM's term changed nothing.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from coopbench.reporting.labels import critic_data_of
from coopbench.reporting.stats import wilson

GREEDY = "baseline/critic-greedy-v0"
COLUMNS = (GREEDY, "read/read-j-scored-v0", "read/read-j-v0", "llm/central-v0")
SHORT = {GREEDY: "critic-greedy", "read/read-j-scored-v0": "scored ReAd-J",
         "read/read-j-v0": "threshold ReAd-J", "llm/central-v0": "Central (no critic)"}


def episodes(run: Path) -> list[dict]:
    out = []
    for line in (run / "episodes.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e.get("error") is None:
            out.append(e)
    return out


def cell_text(group: list[dict]) -> str:
    if not group:
        return "—"
    k, n = sum(e["success"] for e in group), len(group)
    lo, hi = wilson(k, n)
    queries = sum(e["llm_queries"] for e in group)
    per_success = f"{queries / k:.0f}" if k else "∞"
    rounds = f", {per_success} q/success" if queries else ""
    return f"{k}/{n} [{lo:.2f}, {hi:.2f}]{rounds}"


def main(run: Path) -> None:
    by: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for e in episodes(run):
        by[(e["env"], critic_data_of(e["cell"]), e["planner"])].append(e)
    budgets = sorted({(env, b) for env, b, _ in by if b},
                     key=lambda x: (x[0], int(x[1].rpartition(",n=")[2])))
    present = {p for _, _, p in by}
    columns = [p for p in COLUMNS if p in present]
    readers = [p for p in columns[1:] if p.startswith("read/")]
    print("| env | critic data | " + " | ".join(SHORT[p] for p in columns)
          + f" | same episode as critic-greedy ({' / '.join(SHORT[p] for p in readers)}) |")
    print("|---|---|" + "---|" * (len(columns) + 1))
    for env, budget in budgets:
        row = [cell_text(by[(env, budget if p != COLUMNS[-1] else "", p)]) for p in columns]
        greedy = {e["seed"]: e["trajectory"] for e in by[(env, budget, GREEDY)]}
        same = []
        for planner in readers:
            mine = by[(env, budget, planner)]
            hits = sum(greedy.get(e["seed"]) == e["trajectory"] for e in mine)
            same.append(f"{hits}/{len(mine)}" if mine and greedy else "—")
        print(f"| {env} | {budget.rpartition(',')[2]} | " + " | ".join(row)
              + f" | {' / '.join(same)} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
