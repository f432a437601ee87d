#!/usr/bin/env bash
# Round 5 on the 2-core CPU (issue 20), session 8: the long run that owns the machine. Round 4 (the bundled
# lite weights, ~55,000 samples seen) continued through all three stages on the round-5 mixture with
# portraits (train_round5_portraits.toml), bf16 autocast, each stage sized to a wall-clock budget by the
# trainer's own probe (time_budget); fusion and joint use the crisp loss weights of benchmarks/HAZE.md.
# From the repository root, at nice 10 in the background:
#   nohup nice -n 10 weights/recipe/round5_cpu_long.sh > ../runs/r5long.log 2>&1 &
# A stage whose run folder already holds a finished run is skipped; an interrupted one is resumed, so the
# script can be started again after a stop on the same machine. On a new machine, continue from the
# committed candidate (weights/candidates/round5.safetensors) with INIT=weights/candidates/round5.safetensors.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
R="${R:-../runs/r5long}"
INIT="${INIT:-weights/lite.safetensors}"
SPEC="${SPEC:-weights/recipe/train_round5_portraits.toml}"
SEG_S="${SEG_S:-2400}" FUSION_S="${FUSION_S:-600}" JOINT_S="${JOINT_S:-3300}"
mkdir -p "$R"

common="size = 320
batch_size = 8
workers = 1
threads = 2
precision = \"bf16\"
optimizer = \"adamw\"
seed = 8
probe_steps = 30
log_every = 10
ckpt_every = 100
keep_checkpoints = 3"

stage() {  # stage NAME INIT SECONDS CYCLES LR_MIN LR_MAX [extra TOML lines]
  local name="$1" init="$2" seconds="$3" cycles="$4" low="$5" high="$6" extra="${7:-}"
  local run="$R/$name"
  if [ -f "$run/model.safetensors" ]; then echo "== $name: done, skipped"; return; fi
  if [ -d "$run/checkpoints" ] && ls "$run/checkpoints"/*.pt >/dev/null 2>&1; then
    echo "== $name: resumed $(date -u +%T)"; matte train --resume "$run" -q; return
  fi
  printf '%s\nstage = "%s"\ninit = "%s"\ntime_budget = %s\nbudget_cycles = %s\nlr_min = %s\nlr_max = %s\n%s\n' \
    "$common" "${name%%-*}" "$init" "$seconds" "$cycles" "$low" "$high" "$extra" > "$R/$name.toml"
  echo "== $name: started $(date -u +%T)"
  matte train "$SPEC" --config "$R/$name.toml" --out "$run" --val weights/recipe/val_people.toml \
    --val-every 500 -q
  echo "== $name: ended $(date -u +%T)"
}

stage seg "$INIT" "$SEG_S" 2 5e-5 5e-4
stage fusion "$R/seg" "$FUSION_S" 1 1e-4 1e-3 "fusion_hard_weight = 1.0"
stage joint "$R/fusion" "$JOINT_S" 2 1e-5 1e-4 "fusion_hard_weight = 1.0
joint_branch_weight = 0.1"
echo "== all stages done $(date -u +%T)"
