#!/usr/bin/env bash
# Reproduces results/credit/: LLM-potential PPO vs sparse PPO on overcooked/cramped_room-v0
# (classic setting: 3-onion soups, cook time 20, 400 ticks; primitive actions).
# The "LLM" is the simulated ranker sim:expert with a 20 % error rate per answer.
# Each training run was stopped (SIGTERM) after about 15 minutes of wall time on a shared,
# heavily loaded 2-core CPU; `--resume` continues a run from its last checkpoint. Curves are
# compared up to the environment steps every run reached.
set -euo pipefail
OUT=${OUT:-runs/credit}
export COOPBENCH_LLM_CACHE=off   # the simulated model is not cached anyway

# ---- round 2 (measure of then: a dish 0.25 before cooking) -----------------------------------------------------------
# Walking is SAME for the judge (--tie-tolerance 0.25); inputs are standardised by `credit fit`.
coopbench credit collect --env overcooked/cramped_room-v0 --llm 'sim:expert?noise=0.2&seed=0' \
    --pairs 30000 --repeats 5 --explore 0.1,0.3,0.5,0.7 --seed 0 --tie-tolerance 0.25 \
    --out "$OUT/r2/prefs"
coopbench credit fit --prefs "$OUT/r2/prefs" --ignore-inputs 27,33 --out "$OUT/r2/potential"
B="--envs 8 --rollout 256 --lr 5e-4 --epochs 4 --ent-coef 0.03 --steps 1500000"
for seed in 0 1 2; do
  coopbench credit train --env overcooked/cramped_room-v0 --reward sparse $B --seed "$seed" \
      --out "$OUT/r2/sparse-s$seed"
done
for seed in 0 1; do  # stopped (SIGTERM) at 0.84 / 0.82 M steps
  coopbench credit train --env overcooked/cramped_room-v0 --reward llm \
      --potential "$OUT/r2/potential" --shaping-scale 5 $B --seed "$seed" --out "$OUT/r2/llm-s$seed"
done

# ---- round 3: pairs 1, 5 or 25 steps apart (same measure) ----------------------------------------------
coopbench credit collect --env overcooked/cramped_room-v0 --llm 'sim:expert?noise=0.2&seed=0' \
    --pairs 30000 --repeats 5 --explore 0.1,0.3,0.5,0.7 --seed 0 --tie-tolerance 0.25 \
    --gaps 1,5,25 --out "$OUT/r3/prefs"
coopbench credit fit --prefs "$OUT/r3/prefs" --ignore-inputs 27,33 --out "$OUT/r3/potential"
for seed in 0 1; do
  coopbench credit train --env overcooked/cramped_room-v0 --reward llm \
      --potential "$OUT/r3/potential" --shaping-scale 10 $B --seed "$seed" --out "$OUT/r3/llm-s$seed"
done
coopbench credit train --env overcooked/cramped_room-v0 --reward llm \
    --potential "$OUT/r3/potential" --shaping-scale 30 $B --seed 0 --out "$OUT/r3/llm30-s0"
coopbench credit train --env overcooked/cramped_room-v0 --reward hand \
    ${B/1500000/1000000} --seed 1 --out "$OUT/r3/hand-s1"
coopbench credit plot "sparse=$OUT/r2/sparse-s0,$OUT/r2/sparse-s1,$OUT/r2/sparse-s2" \
    "LLM potentials, consecutive pairs (x5)=$OUT/r2/llm-s0,$OUT/r2/llm-s1" \
    "LLM potentials, gaps 1/5/25 (x10)=$OUT/r3/llm-s0,$OUT/r3/llm-s1" \
    "LLM potentials, gaps 1/5/25 (x30)=$OUT/r3/llm30-s0" \
    "hand shaping (reference)=$OUT/r3/hand-s1" --metric soups --threshold 1 \
    --title "cramped_room classic, primitive: rounds 2-3 (sim judge, noise 0.2)" \
    --out results/credit/soups-c.png --summary results/credit/summary-c.json

# ---- round 4: measure values a dish at 0 until a recipe soup cooks (current code) ------------
python results/credit/oracle_ppo.py "$OUT/r4/oracle3-s0" 3 1000000 0    # true progress as Φ
python results/credit/oracle_ppo.py "$OUT/r4/oracle10-s0" 10 1000000 0
coopbench credit collect --env overcooked/cramped_room-v0 --llm 'sim:expert?noise=0.2&seed=0' \
    --pairs 30000 --repeats 5 --explore 0.1,0.3,0.5,0.7 --seed 0 --tie-tolerance 0.25 \
    --gaps 1,5,25 --out "$OUT/r4/prefs"
coopbench credit fit --prefs "$OUT/r4/prefs" --ignore-inputs 27,33 --out "$OUT/r4/potential"
for seed in 0 1 2; do
  coopbench credit train --env overcooked/cramped_room-v0 --reward llm \
      --potential "$OUT/r4/potential" --shaping-scale 10 $B --seed "$seed" --out "$OUT/r4/llm-s$seed"
done
# results/credit/soups-c.png: `coopbench credit plot` over the runs of rounds 2-4 (labels as in it)

# ---- round 5: a judge that errs on close calls, held soups in the observation, fading shaping --
# The judge: sim:expert with rationality 2 (a ranking whose progress differs by Δ is wrong with
# probability 1 − σ(2|Δ|); a tie is wrong with probability 0.2). Observation: compact_soup.
# Potential inputs ignored: pot cook countdowns (27, 33) and items on counters (34-36).
OBS='{"obs_type": "compact_soup"}'
coopbench credit collect --env overcooked/cramped_room-v0 --env-kwargs "$OBS" \
    --llm 'sim:expert?noise=0.2&rationality=2&seed=0' --pairs 30000 --repeats 5 \
    --explore 0.1,0.3,0.5,0.7 --seed 0 --tie-tolerance 0.25 --gaps 1,5,25 --out "$OUT/r5/prefs"
coopbench credit fit --prefs "$OUT/r5/prefs" --ignore-inputs 27,33,34,35,36 --out "$OUT/r5/potential"
for seed in 0 1 2 3 4; do  # llm s0 was started with --steps 2500000 and stopped at 1.5 M
  coopbench credit train --env overcooked/cramped_room-v0 --env-kwargs "$OBS" --reward llm \
      --potential "$OUT/r5/potential" --shaping-scale 2 --shaping-anneal 2000000 $B \
      --seed "$seed" --out "$OUT/r5/llm-s$seed"
  coopbench credit train --env overcooked/cramped_room-v0 --env-kwargs "$OBS" --reward sparse \
      $B --seed "$seed" --out "$OUT/r5/sparse-s$seed"
done
# Controls: the same recipe with constant-error judges (20 %, round 4's; and 9 %)
for noise in 0.2 0.09; do
  coopbench credit collect --env overcooked/cramped_room-v0 --env-kwargs "$OBS" \
      --llm "sim:expert?noise=$noise&seed=0" --pairs 30000 --repeats 5 \
      --explore 0.1,0.3,0.5,0.7 --seed 0 --tie-tolerance 0.25 --gaps 1,5,25 \
      --out "$OUT/r5/prefs-flat$noise"
  coopbench credit fit --prefs "$OUT/r5/prefs-flat$noise" --ignore-inputs 27,33,34,35,36 \
      --out "$OUT/r5/potential-flat$noise"
  for seed in 0 1 2; do
    coopbench credit train --env overcooked/cramped_room-v0 --env-kwargs "$OBS" --reward llm \
        --potential "$OUT/r5/potential-flat$noise" --shaping-scale 2 --shaping-anneal 2000000 \
        $B --seed "$seed" --out "$OUT/r5/llm-flat$noise-s$seed"
  done
done
R="$OUT/r5"  # results/credit/runs-r5 holds these runs' curves under the same names
coopbench credit plot \
    "LLM potentials, judge errs on close calls=$R/llm-s0,$R/llm-s1,$R/llm-s2,$R/llm-s3,$R/llm-s4" \
    "sparse=$R/sparse-s0,$R/sparse-s1,$R/sparse-s2,$R/sparse-s3,$R/sparse-s4" \
    "control: constant-error judge, 20 %=$R/llm-flat0.2-s0,$R/llm-flat0.2-s1,$R/llm-flat0.2-s2" \
    "control: constant-error judge, 9 %=$R/llm-flat0.09-s0,$R/llm-flat0.09-s1,$R/llm-flat0.09-s2" \
    --metric soups --threshold 1 \
    --title "cramped_room classic, primitive: round 5 (x2 shaping fading over 2 M steps)" \
    --out results/credit/soups-r5.png --summary results/credit/summary-r5.json
exit 0

# ---- round 1 (code of commit d5f9fa2) -------------------------------------------------------

# 1. 30,000 consecutive state pairs × 2 agents × K=5 answers = 300,000 queries
coopbench credit collect --env overcooked/cramped_room-v0 --llm 'sim:expert?noise=0.2&seed=0' \
    --pairs 30000 --repeats 5 --explore 0.3,0.6,0.9,1.0 --seed 0 --out "$OUT/prefs"

# 2. per-agent potentials (128 hidden, 12,000 Bradley-Terry steps). The `time` input (38) is
#    masked automatically as a clock; the pots' cook countdowns (27, 33) are masked by hand:
#    they are clocks within cooking, and Φ otherwise learns "just started cooking" > "ready".
coopbench credit fit --prefs "$OUT/prefs" --ignore-inputs 27,33 --out "$OUT/potential"

# 3. PPO, 3 seeds per reward mode (run with `nice -n 10`; each about 15 min here)
for seed in 0 1 2; do
  coopbench credit train --env overcooked/cramped_room-v0 --reward llm \
      --potential "$OUT/potential" --shaping-scale 3 --envs 8 --rollout 128 --lr 1e-3 \
      --epochs 8 --steps 2000000 --seed "$seed" --out "$OUT/llm-s$seed"
  coopbench credit train --env overcooked/cramped_room-v0 --reward sparse \
      --envs 8 --rollout 128 --lr 1e-3 --epochs 8 --steps 2000000 --seed "$seed" \
      --out "$OUT/sparse-s$seed"
done

# 4. the plot and the numbers
coopbench credit plot "llm=$OUT/llm-s0,$OUT/llm-s1,$OUT/llm-s2" \
    "sparse=$OUT/sparse-s0,$OUT/sparse-s1,$OUT/sparse-s2" --metric soups --threshold 1 \
    --title "cramped_room, classic, primitive: PPO soups per episode" \
    --out results/credit/soups.png --summary results/credit/summary.json

# Setting B (after A collapsed): the same potential, PPO with longer rollouts, 4 epochs,
# lr 5e-4 and entropy 0.03; one hand-shaped reference run (Overcooked's own shaping).
B="--envs 8 --rollout 256 --lr 5e-4 --epochs 4 --ent-coef 0.03 --steps 2000000"
for seed in 0 1 2; do
  coopbench credit train --env overcooked/cramped_room-v0 --reward llm \
      --potential "$OUT/potential" --shaping-scale 3 $B --seed "$seed" --out "$OUT/b/llm-l3-s$seed"
  coopbench credit train --env overcooked/cramped_room-v0 --reward sparse $B --seed "$seed" \
      --out "$OUT/b/sparse-s$seed"
done
coopbench credit train --env overcooked/cramped_room-v0 --reward hand $B --seed 0 \
    --out "$OUT/b/hand-s0"
coopbench credit plot "llm=$OUT/b/llm-l3-s0,$OUT/b/llm-l3-s1,$OUT/b/llm-l3-s2" \
    "sparse=$OUT/b/sparse-s0,$OUT/b/sparse-s1,$OUT/b/sparse-s2" "hand (reference)=$OUT/b/hand-s0" \
    --metric soups --threshold 1 \
    --title "cramped_room classic, primitive: setting B (rollout 256, ent 0.03)" \
    --out results/credit/soups-b.png --summary results/credit/summary-b.json
