#!/usr/bin/env bash
# Does the GPU pay? One command for anyone with one: the critic and PPO perf scripts and real
# `coopbench critic train` / `coopbench credit train` runs on the CPU and on CUDA, with the
# CUDA/CPU ratios and what `--device auto` picks. On a host without CUDA it says so and runs the
# CPU side only. Output also goes to $OUT_DIR/gpu_check.log (default results/runs/gpu-check).
#
#   benchmarks/perf/gpu_check.sh            # PY=.venv/bin/python by default
#   QUICK=1 benchmarks/perf/gpu_check.sh    # fewer repeats, smaller data (a few minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python
CB=("$PY" -c 'from coopbench.cli import main; main()')
OUT_DIR=${OUT_DIR:-results/runs/gpu-check}
mkdir -p "$OUT_DIR"
export COLUMNS=250  # one line per result from rich
exec > >(tee "$OUT_DIR/gpu_check.log") 2>&1

if [ "${QUICK:-0}" = 1 ]; then
  REPEATS=2; EPISODES=(--expert-episodes 10 --reset-episodes 20); PPO_STEPS=16384; SECS=2
else
  REPEATS=5; EPISODES=(--expert-episodes 20 --reset-episodes 40); PPO_STEPS=65536; SECS=5
fi
CUDA=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))')
DEVICES=(cpu)
echo "== host: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) CPUs"
"$PY" -c 'import torch; print("== torch", torch.__version__, "CUDA:",
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")'
if [ "$CUDA" = 1 ]; then
  DEVICES=(cpu cuda)
else
  echo "== no CUDA device on this host: running the CPU side only"
fi

seconds() {  # seconds LOG: wall time of the command after it, its output to LOG
  local log=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" > "$log" 2>&1 || { echo "FAILED: $* (see $log)" >&2; tail -n 5 "$log" >&2; return 1; }
  end=$(date +%s.%N)
  "$PY" -c "print(f'{$end - $start:.1f}')"
}

ratio() { "$PY" -c 'import sys; a, b = map(float, sys.argv[1:]); print(f"{a / b:.2f}")' "$1" "$2" \
  2>/dev/null || echo n/a; }

echo; echo "== 1. critic trainer vs a plain loop over the same network (per device)"
"$PY" benchmarks/perf/critic_train.py --repeats "$REPEATS" --batches 32,256,1024,4096

echo; echo "== 2. PPO throughput (per device)"
"$PY" benchmarks/perf/ppo_throughput.py --seconds "$SECS"

echo; echo "== 3. coopbench critic train on a collected dataset (roco/sweep-y2g2-v0)"
DATA="$OUT_DIR/sweep-y2g2.npz"
[ -f "$DATA" ] || "${CB[@]}" critic collect --env roco/sweep-y2g2-v0 --out "$DATA" "${EPISODES[@]}"
declare -A CRITIC
for dev in "${DEVICES[@]}" auto; do
  for ens in 1 3; do
    log="$OUT_DIR/critic-$dev-$ens.log"
    t=$(seconds "$log" "${CB[@]}" critic train --data "$DATA" --out "$OUT_DIR/critic-$dev-$ens.pt" \
        --device "$dev" --ensemble "$ens") || t=failed
    CRITIC[$dev-$ens]=$t
    echo "critic train --device $dev --ensemble $ens: $t s; $(tail -n 1 "$log" | tr -s ' ')"
  done
done
if [ "$CUDA" = 1 ]; then
  for ens in 1 3; do
    echo "critic train, ensemble $ens: CPU/CUDA time = $(ratio "${CRITIC[cpu-$ens]}" "${CRITIC[cuda-$ens]}") (> 1: CUDA faster)"
  done
  for batch in 256 1024 4096; do  # is the CUDA default batch (1024) the right one?
    log="$OUT_DIR/critic-cuda-b$batch.log"
    t=$(seconds "$log" "${CB[@]}" critic train --data "$DATA" --out "$OUT_DIR/critic-b$batch.pt" \
        --device cuda --batch-size "$batch") || t=failed
    echo "critic train --device cuda --batch-size $batch: $t s; $(tail -n 1 "$log" | tr -s ' ')"
  done
fi

echo; echo "== 4. coopbench credit train (PPO, overcooked/cramped_room-v0, $PPO_STEPS steps, 16 envs)"
declare -A PPO
for dev in "${DEVICES[@]}" auto; do
  run="$OUT_DIR/ppo-$dev"
  rm -rf "$run"
  t=$(seconds "$OUT_DIR/ppo-$dev.log" "${CB[@]}" credit train --env overcooked/cramped_room-v0 \
      --steps "$PPO_STEPS" --envs 16 --device "$dev" --out "$run") || t=failed
  PPO[$dev]=$t
  echo "credit train --device $dev: $t s; device.json: $(tr -d '\n' < "$run/device.json" 2>/dev/null)"
done
if [ "$CUDA" = 1 ]; then
  echo "credit train: CPU/CUDA time = $(ratio "${PPO[cpu]}" "${PPO[cuda]}") (> 1: CUDA faster)"
  echo "auto must be no slower than the faster device: auto ${PPO[auto]} s," \
       "cpu ${PPO[cpu]} s, cuda ${PPO[cuda]} s"
fi
echo; echo "== done; log in $OUT_DIR/gpu_check.log"
