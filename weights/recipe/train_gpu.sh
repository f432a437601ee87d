#!/usr/bin/env bash
# The joint stage continued on one GPU inside a fixed time budget (round 4 of the default model).
#
# A short probe run measures samples/s; the main run's length is then set so that CYCLES learning-rate
# cycles fit what is left of the budget, with a checkpoint at each cycle's low point. Each low-point
# checkpoint is exported as a candidate; weights/recipe/evaluate.sh picks between them afterwards. If the
# main run overruns, it gets SIGTERM, which finishes the step and writes a checkpoint (the candidates
# written before stay).
#
#   weights/recipe/train_gpu.sh DATA_TOML INIT_WEIGHTS RUN_ROOT OUT_DIR BUDGET_SECONDS
#
# DATA_TOML is a packed copy of the training split (pack_training_data.sh). Settings come from the
# environment: DEVICE (cuda), BATCH (32), SIZE (512), WORKERS (14), CYCLES (3), LR_MIN (2e-5), LR_MAX (2e-4).
set -uo pipefail
data=$1 init=$2 runs=$3 out=$4 budget=$5
start=$(date +%s)
device=${DEVICE:-cuda} batch=${BATCH:-32} size=${SIZE:-512} workers=${WORKERS:-14} cycles=${CYCLES:-3}
matte=(python3 -m mattecli)
common=(--stage joint --init "$init" --batch-size "$batch" --size "$size" --workers "$workers"
  --optimizer adamw --lr-min "${LR_MIN:-2e-5}" --lr-max "${LR_MAX:-2e-4}" --device "$device" --quiet)
mkdir -p "$runs" "$out"

# 1. probe: 80 steps; the speed of steps 41-80 (after start-up and cuDNN's algorithm search)
"${matte[@]}" train "$data" "${common[@]}" --out "$runs/probe" --steps 80 --log-every 20 --ckpt-every 1000 \
  || { echo "probe run failed"; exit 1; }
rate=$(python3 -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
speeds = [r['samples_per_s'] for r in rows if r.get('type') == 'train' and r['step'] > 40]
print(sum(speeds) / len(speeds))" "$runs/probe/metrics.jsonl")
left=$((start + budget - $(date +%s) - 30))   # 30 s for the main run's start-up and last checkpoint
half=$(python3 -c "print(max(10, int($rate * $left / ($batch * 2 * $cycles))))")
steps=$((2 * cycles * half))
echo "probe: $rate samples/s; ${left} s left: $cycles cycles of $((2 * half)) steps ($steps steps, $((steps * batch)) samples)"

# 2. the main run; one epoch = one half cycle, so the low points are at multiples of 2 * half
"${matte[@]}" train "$data" "${common[@]}" --out "$runs/main" --steps "$steps" --epoch-length $((batch * half)) \
  --half-cycle-epochs 1 --ckpt-every $((2 * half)) --keep-checkpoints 0 --log-every 20 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  if (($(date +%s) > start + budget)); then
    echo "budget spent: stopping the main run (SIGTERM)"
    kill -TERM "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$pid" 2>/dev/null
    break
  fi
  sleep 2
done
wait "$pid"
echo "main run exit status $? after $(($(date +%s) - start)) s"

# 3. export the low-point checkpoints as candidates
for ckpt in "$runs"/main/checkpoints/step-*.pt; do
  [ -e "$ckpt" ] || continue
  step=$((10#$(basename "$ckpt" .pt | sed 's/step-//')))
  if ((step % (2 * half) == 0)); then
    "${matte[@]}" export "$ckpt" -o "$out/candidate-step$step.safetensors" --overwrite
  fi
done
cp "$runs/main/metrics.jsonl" "$out/main-metrics.jsonl"
cp "$runs/probe/metrics.jsonl" "$out/probe-metrics.jsonl"
ls -l "$out"
