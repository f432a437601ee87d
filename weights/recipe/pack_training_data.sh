#!/usr/bin/env bash
# Copy the TRAINING split of ../shared/data (no validation photos, cut-outs or backgrounds, none of the
# excluded backgrounds, no masks) into a self-contained folder with its own data TOML, for training on a
# machine that has the repository but not ../shared (a rented GPU). About 46 MB.
#   weights/recipe/pack_training_data.sh DEST      then: matte train DEST/train_groups.toml ...
set -euo pipefail
dest=${1:?usage: pack_training_data.sh DEST}
recipe=$(cd "$(dirname "$0")" && pwd)
data=$recipe/../../../shared/data
skip() { grep -v '^#' "$1" | sed '/^$/d'; }

mkdir -p "$dest"/people/{image,alpha,fg} "$dest"/cutouts "$dest"/backgrounds
for path in "$data"/people/image/*.jpg; do
  name=$(basename "$path" .jpg)
  skip "$recipe/val_people.txt" | grep -qx "$name" && continue
  cp "$path" "$dest/people/image/"
  cp "$data/people/alpha/$name.png" "$dest/people/alpha/"
  cp "$data/people/fg/$name.jpg" "$dest/people/fg/"
done
for path in "$data"/cutouts/*.png; do
  skip "$recipe/val_cutouts.txt" | grep -qx "$(basename "$path" .png)" || cp "$path" "$dest/cutouts/"
done
for path in "$data"/backgrounds/*.jpg; do
  skip "$recipe/train_backgrounds_exclude.txt" | grep -qx "$(basename "$path" .jpg)" || cp "$path" "$dest/backgrounds/"
done
cp "$recipe"/val_people.txt "$recipe"/val_cutouts.txt "$recipe"/train_backgrounds_exclude.txt "$dest/"
for toml in train.toml train_groups.toml; do
  sed 's#\.\./\.\./\.\./shared/data/##' "$recipe/$toml" >"$dest/$toml"
done
du -sh "$dest"
