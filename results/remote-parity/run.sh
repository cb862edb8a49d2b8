#!/usr/bin/env bash
# How results/remote-parity was made (issue 22), from the repository root: the same matrix on
# the packaged 0.5B embedded (local.yaml) and behind `coopbench llm serve` (served.yaml),
# compared episode by episode (parity.py). The two halves run at the same time, one llama.cpp
# thread each (2 cores), with the response cache off so that no answer comes from an earlier
# run; the Cramped Room critic is trained on demand once (both halves resolve the same
# checkpoint).
set -euo pipefail
export COOPBENCH_LLM_CACHE=off COOPBENCH_LOCAL_THREADS=1
rm -rf results/runs/parity-local results/runs/parity-served
mkdir -p results/runs
.venv/bin/coopbench llm serve --port 18080 > results/runs/parity-serve.log 2>&1 &
SERVER=$!
trap 'kill $SERVER' EXIT
until curl -sf http://127.0.0.1:18080/v1/models > /dev/null; do sleep 1; done
.venv/bin/coopbench matrix results/remote-parity/local.yaml --out results/runs/parity-local &
LOCAL=$!
.venv/bin/coopbench matrix results/remote-parity/served.yaml --out results/runs/parity-served
wait $LOCAL
.venv/bin/python results/remote-parity/parity.py results/runs/parity-local \
    results/runs/parity-served > results/remote-parity/table.md
