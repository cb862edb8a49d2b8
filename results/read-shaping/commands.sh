#!/usr/bin/env bash
# How results/read-shaping was made (run from the repository root; about 8 minutes on 2 CPU cores).
set -euo pipefail
C=.venv/bin/coopbench
R=results/runs/read-shaping   # ignored by git
mkdir -p $R
# 1. Potentials: 300 consecutive-state pairs ranked 3x per agent by the simulated LLM (20% errors)
$C credit collect --env roco/sort-level5-v0 --llm 'sim:expert?noise=0.2&seed=0' --pairs 300 \
    --repeats 3 --seed 0 --out $R/prefs
$C credit fit --prefs $R/prefs --out $R/potential
# 2. One critic dataset (the one behind the shipped Sort-5 critic), three critics on it
$C critic collect --env roco/sort-level5-v0 --out $R/sort5.npz --expert-episodes 30 \
    --reset-episodes 90 --branch 0.5 --seed 3
$C critic train --data $R/sort5.npz --out $R/critic-plain.pt --device cpu --max-seconds 150
$C critic train --data $R/sort5.npz --out $R/critic-shaped.pt --device cpu --max-seconds 150 \
    --potential $R/potential --potential-scale 1
$C critic train --data $R/sort5.npz --out $R/critic-shaped025.pt --device cpu --max-seconds 150 \
    --potential $R/potential --potential-scale 0.25
# 3. ReAd-S with each critic, 10 seeds, sim:expert?noise=0.4&garble=0.1&seed=0
for v in plain shaped025 shaped; do
  $C matrix results/read-shaping/$v.yaml --out $R/$v --no-report
  $C critic eval --critic $R/critic-$v.pt --states 200 --oracle --json > $R/eval-$v.json
done
.venv/bin/python results/read-shaping/table.py $R > results/read-shaping/table.md
