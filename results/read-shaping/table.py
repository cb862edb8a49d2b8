"""Print the ReAd-S with/without potential shaping table from results/runs/read-shaping."""

import json
import sys
from pathlib import Path

ROWS = [("plain", "none (plain MC targets)"), ("shaped025", "potential, scale 0.25"),
        ("shaped", "potential, scale 1 (default)")]


def main(root: Path) -> None:
    print("| critic targets | episodes | SR | NQ/episode | NQ per success | steps/episode "
          "| critic joint rank | critic vs true returns |")
    print("|---|---|---|---|---|---|---|---|")
    for name, label in ROWS:
        eps = [json.loads(line) for line in (root / name / "episodes.jsonl").read_text()
               .splitlines() if line.strip()]
        wins = sum(bool(e["success"]) for e in eps)
        queries = sum(e["llm_queries"] for e in eps)
        steps = sum(e["interaction_steps"] for e in eps) / len(eps)
        per_win = f"{queries / wins:.1f}" if wins else "—"
        ev = json.loads((root / f"eval-{name}.json").read_text())
        print(f"| {label} | {len(eps)} | {wins / len(eps):.2f} | {queries / len(eps):.1f} | "
              f"{per_win} | {steps:.1f} | {ev['joint_rank']:.1%} | {ev['agreement']:.1%} |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/runs/read-shaping"))
