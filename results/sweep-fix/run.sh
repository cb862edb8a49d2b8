#!/usr/bin/env bash
# Issue 24 items 3 and 5: the Sweep runs of results/sweep-fix/README.md (simulated LLM and no
# LLM only; from the repository root, after the critics of results/read-local/critics.sh and
# results/read-sim/commands.sh are in coopbench/critics/pretrained/). About 10 min on 2 cores.
set -euo pipefail
R=".venv/bin/coopbench run"
L="sim:expert?noise=0.4&garble=0.1&seed=0"
O=results/runs/sweep-fix
# Sweep Y1_G1: critic-driven planners (the 15-step cap)
$R --env roco/sweep-y1g1-v0 --planner baseline/critic-greedy-v0 --seeds 0-9 --out $O/y1-critic-greedy
$R --env roco/sweep-y1g1-v0 --planner read/read-j-scored-v0 --llm "$L" --seeds 0-9 --out $O/y1-read-j-scored
$R --env roco/sweep-y1g1-v0 --planner read/read-j-v0 --llm "$L" --seeds 0-9 --out $O/y1-read-j
# Item 5: ReAd-S and RoCo on Sweep Y2_G2, read-sim's seeds 0-9, then 30 more seeds
for p in read/read-s-v0 llm/roco-v0; do
  $R --env roco/sweep-y2g2-v0 --planner $p --llm "$L" --seeds 0-9 --out $O/y2-${p#*/}
  $R --env roco/sweep-y2g2-v0 --planner $p --llm "$L" --seeds 10-39 --out $O/y2-${p#*/}-more
done
