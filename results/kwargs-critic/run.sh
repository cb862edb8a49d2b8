#!/usr/bin/env bash
# How results/kwargs-critic was made (run from the repository root). The example plug-in is
# installed into a private directory and the critic cache is a fresh one, so ReAd-J trains its
# on-demand critic for meetgrid size 7 anew (deterministic: the same weights every time).
#   ABLATION=1 also runs the matrix on the code and/or plug-in of 65ea482 (before issue 15's
#   critic work): four combinations of {old, new} coopbench x {old, new} meetgrid expert.
set -euo pipefail
PY=${PY:-.venv/bin/python}
ROOT=$(pwd)
tmp=$(mktemp -d)
install_plugin() {  # $1 = plug-in source, $2 = target
    cp -r "$1" "$tmp/src-$(basename "$2")"  # pip builds in place: keep the repo clean
    "$PY" -m pip install --quiet --no-deps --no-build-isolation --no-index \
        --disable-pip-version-check --target "$2" "$tmp/src-$(basename "$2")"
}
install_plugin tests/plugins/coopbench-meetgrid "$tmp/site-new"
COOPBENCH_CACHE_DIR="$tmp/cache-new" PYTHONPATH="$tmp/site-new" \
    "$PY" -m coopbench matrix results/kwargs-critic/matrix.yaml --out results/runs/kwargs-critic
cp "$tmp"/cache-new/critics/*.quality.json results/kwargs-critic/critic-quality.json
"$PY" -m coopbench report results/runs/kwargs-critic --format md --paper --no-files \
    > results/kwargs-critic/report.md
cp results/runs/kwargs-critic/{episodes.jsonl,summary.json} results/kwargs-critic/ 2>/dev/null || true

if [ "${ABLATION:-0}" = 1 ]; then
    mkdir -p "$tmp/old"
    git archive 65ea482 | tar -x -C "$tmp/old"
    install_plugin "$tmp/old/tests/plugins/coopbench-meetgrid" "$tmp/site-old"
    for code in old new; do
        for expert in old new; do
            root=$ROOT; [ $code = old ] && root=$tmp/old
            name=kwargs-critic-code-$code-expert-$expert
            # run from the code's root: `python -m` puts the working directory first
            (cd "$root" && COOPBENCH_CACHE_DIR="$tmp/cache-$name" \
                PYTHONPATH="$tmp/site-$expert:$root" "$PY" -m coopbench matrix \
                "$ROOT/results/kwargs-critic/matrix.yaml" --out "$ROOT/results/runs/$name")
            echo "$name critic: $(cat "$tmp"/cache-$name/critics/*.quality.json | tr -d ' \n')"
        done
    done
fi
