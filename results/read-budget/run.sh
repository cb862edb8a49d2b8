#!/usr/bin/env bash
# results/read-budget (issue 24): success against critic data; from the repository root after
# `make install`. About 2 h 25 min on 2 idle AMD EPYC cores (the embedded 0.5B answers every
# ReAd-J and Central step; threshold ReAd-J is most of it).
set -euo pipefail
OUT=results/runs/read-budget
.venv/bin/coopbench matrix results/read-budget/spec.yaml --out "$OUT"
.venv/bin/coopbench report "$OUT" --format md > results/read-budget/report.md
cp "$OUT"/plots/success_vs_critic_data.png results/read-budget/
.venv/bin/python results/read-budget/table.py "$OUT" > results/read-budget/table.md
