#!/usr/bin/env bash
# Critics for the three tasks of results/read-local (issue 16), shipped in coopbench/critics/pretrained/.
set -euo pipefail
cd "$(dirname "$0")/../.."
C=".venv/bin/coopbench critic"
t() { local s=$(date +%s); "$@"; echo "TIME $(( $(date +%s) - s ))s: $*"; }
t $C collect --env roco/sort-level1-v0 --out data/sort1.npz --expert-episodes 30 --reset-episodes 90 --branch 0.5 --seed 3
# issue 24: a second collection with a counterfactual row every step, behaviour prefix targets,
# 5 networks (acceptance 43 % -> 53 %, floor 50 %)
t $C collect --env roco/sort-level1-v0 --out data/sort1-b.npz --expert-episodes 60 --reset-episodes 180 --branch 1.0 --seed 4
t $C train --data data/sort1.npz --data data/sort1-b.npz --ensemble 5 --prefix-targets behaviour --out coopbench/critics/pretrained/roco__sort-level1-v0.pt
# Sweep Y1_G1 (issue 24: after the Sweep fix; gamma 0.8, at which a wasted step costs 20 % of
# the return to come instead of 5 %, more than the critic's error, so the argmax over joint
# plans stops picking wasted steps: critic-greedy 0.00 at gamma 0.95, 1.00 at 0.8)
t $C collect --env roco/sweep-y1g1-v0 --out data/sweep1g-s0.npz --expert-episodes 40 --reset-episodes 100 --gamma 0.8 --seed 0
t $C collect --env roco/sweep-y1g1-v0 --out data/sweep1g-s1.npz --expert-episodes 40 --reset-episodes 80 --branch 1.0 --gamma 0.8 --seed 1
t $C train --data data/sweep1g-s0.npz --data data/sweep1g-s1.npz --prefix-targets behaviour --ensemble 5 --lr 3e-4 --patience 30 --max-seconds 300 --out coopbench/critics/pretrained/roco__sweep-y1g1-v0.pt
t $C collect --env overcooked/cramped_room-read-skills-v0 --out data/cramped-skills.npz --expert-episodes 100 --reset-episodes 200 --branch 1.0 --seed 5
t $C train --data data/cramped-skills.npz --balance 0 --prefix-targets behaviour --out coopbench/critics/pretrained/overcooked__cramped_room-read-skills-v0.pt
for e in roco/sort-level1-v0 roco/sweep-y1g1-v0 overcooked/cramped_room-read-skills-v0; do
  t $C eval --critic coopbench/critics/pretrained/$(echo $e | sed 's#/#__#').pt --states 100 --oracle --save-quality || true
done
