#!/usr/bin/env bash
# Validation of a model on the held-out split of ../shared/data (whole image, never trained on):
#   1. people photos against their soft alphas (MSE, SAD, Grad, Conn, IoU),
#   2. the same photos against the dataset's binary masks (IoU),
#   3. held-out cut-outs composited onto held-out backgrounds (IoU),
#   4. held-out Clothing Co-Parsing photos against their soft alphas (round 5; val_ccp.txt),
#   5. the held-out DAVIS clip against its soft alphas (round 5; val_davis.txt),
#   6. held-out head-and-shoulders portraits against their soft alphas (issue 20; val_portraits.txt).
# Usage: weights/recipe/evaluate.sh MODEL OUT_DIR [matte eval options, e.g. --tta]   (from the repository root)
set -euo pipefail
model="${1:-default}"
out="${2:-runs/eval}"
shift $(( $# < 2 ? $# : 2 ))
recipe="$(cd "$(dirname "$0")" && pwd)"
data="$recipe/../../../shared/data"

matte eval "$recipe/val_people.toml" --model "$model" --out "$out/people-alpha" --overwrite "$@"

masks="$(mktemp -d)"
trap 'rm -rf "$masks"' EXIT
mkdir -p "$masks/image" "$masks/alpha"
while read -r name; do
  [ -z "$name" ] && continue
  ln -s "$(realpath "$data/people/image/$name.jpg")" "$masks/image/$name.jpg"
  ln -s "$(realpath "$data/people/mask/$name.png")" "$masks/alpha/$name.png"
done < "$recipe/val_people.txt"
matte eval "$masks" --model "$model" --out "$out/people-mask" --overwrite "$@"

matte eval "$recipe/val_cutouts.toml" --model "$model" --out "$out/cutouts" --overwrite "$@"
matte eval "$recipe/val_ccp.toml" --model "$model" --out "$out/ccp" --overwrite "$@"
matte eval "$recipe/val_davis.toml" --model "$model" --out "$out/davis" --overwrite "$@"
matte eval "$recipe/val_portraits.toml" --model "$model" --out "$out/portraits" --overwrite "$@"
