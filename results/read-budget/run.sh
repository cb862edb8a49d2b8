#!/usr/bin/env bash
# results/read-budget (issue 24): success against critic data; from the repository root after
# `make install` (and `pip install -e '.[local-1-5b]'` into .venv for the 1.5B rows). On 2 idle
# AMD EPYC cores: spec.yaml about 2 h 25 min (threshold ReAd-J is most of it),
# spec-llm-data.yaml about 50 min and spec-llm-data-sweep.yaml about 25 min (collecting
# Central's own episodes with the 0.5B is most of it),
# spec-beta1.yaml and spec-1p5b.yaml about 20 min each.
set -euo pipefail
HERE=results/read-budget
run() {  # <spec> <run dir> <suffix of the committed files>
    .venv/bin/coopbench matrix "$HERE/$1" --out "$2"
    .venv/bin/coopbench report "$2" --format md > "$HERE/report$3.md"
    .venv/bin/python "$HERE/table.py" "$2" > "$HERE/table$3.md"
}
run spec.yaml results/runs/read-budget ""
cp results/runs/read-budget/plots/success_vs_critic_data.png "$HERE/"
run spec-llm-data.yaml results/runs/read-budget-llm-data -llm-data
cp results/runs/read-budget-llm-data/plots/success_vs_critic_data.png \
    "$HERE/success_vs_llm_critic_data.png"
run spec-llm-data-sweep.yaml results/runs/read-budget-llm-data-sweep -llm-data-sweep
run spec-beta1.yaml results/runs/read-budget-beta1 -beta1
run spec-1p5b.yaml results/runs/read-budget-1p5b -1p5b
