#!/usr/bin/env bash
# How results/read-sim was made (run from the repository root). The critics are shipped in
# coopbench/critics/pretrained/ and picked up by `critic: auto`; these lines rebuild them.
set -euo pipefail
C=".venv/bin/coopbench critic"
# Sweep Y2_G2: three collections merged (the first with the default --branch 0.3)
$C collect --env roco/sweep-y2g2-v0 --out data/sweep-s0.npz --expert-episodes 40 --reset-episodes 100 --seed 0
$C collect --env roco/sweep-y2g2-v0 --out data/sweep-s1.npz --expert-episodes 30 --reset-episodes 100 --branch 0.5 --seed 1
$C collect --env roco/sweep-y2g2-v0 --out data/sweep-s2.npz --expert-episodes 30 --reset-episodes 100 --branch 0.5 --seed 2
$C train --data data/sweep-s0.npz --data data/sweep-s1.npz --data data/sweep-s2.npz --out coopbench/critics/pretrained/roco__sweep-y2g2-v0.pt
# Sandwich recipe 4
$C collect --env roco/sandwich-recipe4-v0 --out data/sandwich4.npz --expert-episodes 20 --reset-episodes 30 --branch 0.3 --horizon-scale 1.5 --seed 3
$C train --data data/sandwich4.npz --out coopbench/critics/pretrained/roco__sandwich-recipe4-v0.pt
# Sort level 5
$C collect --env roco/sort-level5-v0 --out data/sort5.npz --expert-episodes 30 --reset-episodes 90 --branch 0.5 --seed 3
$C train --data data/sort5.npz --out coopbench/critics/pretrained/roco__sort-level5-v0.pt
# Overcooked Cramped Room (ReAd setting)
$C collect --env overcooked/cramped_room-read-v0 --out data/cramped.npz --expert-episodes 80 --reset-episodes 160 --branch 0.5 --seed 3
$C train --data data/cramped.npz --balance 0 --out coopbench/critics/pretrained/overcooked__cramped_room-read-v0.pt  # balance 0.5 gave ReAd-J SR 0.0 here, 0 gave 0.2
# The comparison and its tables
.venv/bin/coopbench matrix results/read-sim/matrix.yaml --out results/runs/read-sim
# Sweep rows re-run after Sweep's reward became ReAd's (+1 per target swept into the dustpan)
# and its critic was retrained; table/report = the other tasks' episodes of the full run + these
.venv/bin/coopbench matrix results/read-sim/matrix-sweep.yaml --out results/runs/read-sim-sweep --workers 2
.venv/bin/coopbench critic eval --critic coopbench/critics/pretrained/roco__sweep-y2g2-v0.pt --states 200 --oracle
.venv/bin/coopbench report results/runs/read-sim --format md --paper --no-files > results/read-sim/report.md
.venv/bin/python results/read-sim/table.py results/runs/read-sim > results/read-sim/table.md
