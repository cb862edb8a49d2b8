#!/usr/bin/env bash
# How results/read-local was made (issue 16), from the repository root. The critics are the
# shipped ones (coopbench/critics/pretrained/, rebuilt by results/read-local/critics.sh).
# Several processes with one llama.cpp thread each share the 2 cores better than one with two.
set -euo pipefail
export COOPBENCH_LOCAL_THREADS=1
M=".venv/bin/coopbench matrix"
$M results/read-local/local-sweep.yaml --out results/runs/read-local-sweep > /dev/null &
$M results/read-local/local-rest.yaml --out results/runs/read-local-rest > /dev/null &
$M results/read-local/local-scored.yaml --out results/runs/read-local-scored > /dev/null &
wait
S="read/read-j-scored-v0"
.venv/bin/python results/read-sim/table.py results/runs/read-local-scored \
    "results/runs/read-local-rest#$S=$S (β=0.1)" "results/runs/read-local-sweep#$S=$S (β=0.1)" \
    > results/read-local/table.md
