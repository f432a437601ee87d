#!/usr/bin/env bash
# Round 4 of the default model as it ran on a rented GPU machine (one H200, 16 cores, no network), from the
# repository root, with the packed training split in .gpudata (pack_training_data.sh) and, in .whl, wheels
# of this project's CLI dependencies that the machine lacked. OUT is where the candidates and logs go.
set -uo pipefail
out=${OUT:?set OUT}
export PYTHONUNBUFFERED=1 MATTE_HOME=/tmp/matte-home
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "cores: $(nproc)"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site
if ! python3 -m mattecli train --help >/dev/null 2>&1; then
  echo "the carried wheels do not import here; using the machine's own packages"
  unset PYTHONPATH
fi
python3 -c "import torch, typer; print('torch', torch.__version__, 'typer', typer.__file__)"

# about 8 minutes of training: a probe, then three learning-rate cycles at 512 px, batch 32
weights/recipe/train_gpu.sh .gpudata/train_groups.toml "${INIT:-weights/lite.safetensors}" /tmp/runs "$out" "${BUDGET:-440}"

# the bundled model on the GPU: agreement with the CPU-made examples, and speed
PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} timeout "${BENCH_TIMEOUT:-70}" \
  python3 benchmarks/bench_device.py --device cuda --model weights/lite.safetensors --repeats 10
