#!/usr/bin/env bash
# Round 5 on the 2-core CPU (issue 20), session 8: the long run that owns the machine. Round 4 (the bundled
# lite weights, ~55,000 samples seen) continued in the joint stage on the round-5 mixture with portraits
# (train_round5_portraits.toml) at bf16, with the crisp loss weights of benchmarks/HAZE.md (fusion hard-pixel
# weight 1.0, joint branch weight 0.1).
#
# The run shares the CPU with the session's other work, so its speed is not known in advance: instead of a
# time budget it runs short learning-rate cycles (300 steps of 8 = 2,400 samples) and checkpoints and
# validates at every low point, so wherever the session stops it, the newest checkpoint is a finished cycle.
# From the repository root, at nice 10 in the background:
#   nohup nice -n 10 weights/recipe/round5_cpu_long.sh > ../runs/r5long.log 2>&1 &
# Started again on the same machine it resumes the run. On a new machine, continue from the committed
# candidate: INIT=weights/candidates/round5.safetensors (and a new R).
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
R="${R:-../runs/r5long}"
INIT="${INIT:-weights/lite.safetensors}"
SPEC="${SPEC:-weights/recipe/train_round5_portraits.toml}"
run="$R/joint"
mkdir -p "$R"

if ls "$run/checkpoints"/*.pt >/dev/null 2>&1; then
  echo "== joint: resumed $(date -u +%T)"
  exec matte train --resume "$run" -q
fi
cat > "$R/joint.toml" <<TOML
stage = "joint"
init = "$INIT"
size = 320
batch_size = 8
workers = 1
threads = 2
precision = "bf16"
optimizer = "adamw"
lr_min = 1e-5
lr_max = 1e-4
half_cycle_steps = 150
steps = 9000
seed = 8
fusion_hard_weight = 1.0
joint_branch_weight = 0.1
log_every = 10
ckpt_every = 300
keep_checkpoints = 0
val_every = 300
TOML
echo "== joint: started $(date -u +%T)"
exec matte train "$SPEC" --config "$R/joint.toml" --out "$run" --val weights/recipe/val_people.toml -q
