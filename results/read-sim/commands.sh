#!/usr/bin/env bash
# How results/read-sim was made (run from the repository root). The critics are shipped in
# coopbench/critics/pretrained/ and picked up by `critic: auto`; these lines rebuild them
# (collection and training are deterministic: the same commands give the same checkpoints).
set -euo pipefail
C=".venv/bin/coopbench critic"
# Sweep Y2_G2 (issue 24: retrained after the Sweep fix, features sweep-2, reward 2): two
# collections merged (the second with a counterfactual row at every other step), behaviour-only
# prefix targets, 5-network ensemble
$C collect --env roco/sweep-y2g2-v0 --out data/sweep-s0.npz --expert-episodes 40 --reset-episodes 100 --seed 0
$C collect --env roco/sweep-y2g2-v0 --out data/sweep-s1.npz --expert-episodes 30 --reset-episodes 100 --branch 0.5 --seed 1
$C train --data data/sweep-s0.npz --data data/sweep-s1.npz --prefix-targets behaviour --ensemble 5 \
    --max-seconds 600 --out coopbench/critics/pretrained/roco__sweep-y2g2-v0.pt
$C eval --critic coopbench/critics/pretrained/roco__sweep-y2g2-v0.pt --states 100 --oracle --save-quality
# Sandwich recipe 4
$C collect --env roco/sandwich-recipe4-v0 --out data/sandwich4.npz --expert-episodes 20 --reset-episodes 30 --branch 0.3 --horizon-scale 1.5 --seed 3
$C train --data data/sandwich4.npz --out coopbench/critics/pretrained/roco__sandwich-recipe4-v0.pt
# Sort level 5
$C collect --env roco/sort-level5-v0 --out data/sort5.npz --expert-episodes 30 --reset-episodes 90 --branch 0.5 --seed 3
$C train --data data/sort5.npz --out coopbench/critics/pretrained/roco__sort-level5-v0.pt
# Overcooked Cramped Room (ReAd setting): 1,200 episodes, a counterfactual row at every step,
# behaviour-only prefix targets (balance 0 as before: 0.5 gave ReAd-J SR 0.0 with the old data)
$C collect --env overcooked/cramped_room-read-v0 --out data/cramped-big.npz --expert-episodes 400 --reset-episodes 800 --branch 1.0 --seed 5
$C train --data data/cramped-big.npz --balance 0 --prefix-targets behaviour --out coopbench/critics/pretrained/overcooked__cramped_room-read-v0.pt
# Held-out ranking (README.md)
$C eval --critic coopbench/critics/pretrained/roco__sweep-y2g2-v0.pt --states 200 --oracle
$C eval --critic coopbench/critics/pretrained/overcooked__cramped_room-read-v0.pt --states 200 --oracle
# The comparison and its tables (one run, 160 episodes)
.venv/bin/coopbench matrix results/read-sim/matrix.yaml --out results/runs/read-sim-full
.venv/bin/python results/read-sim/table.py results/runs/read-sim-full > results/read-sim/table.md
.venv/bin/coopbench report results/runs/read-sim-full --format md --paper --no-files > results/read-sim/report.md
