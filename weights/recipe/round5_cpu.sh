#!/usr/bin/env bash
# Round 5 on the 2-core CPU (issue 13), session 7: the first ImageNet-initialised runs on the round-5 mixture
# (train_round5.toml), as run, from the repository root. Checkpoints live outside the repository
# (R=/work/runs/r5cpu); every command resumes with `matte train --resume $R/RUN`.
# Figures are in weights/README.md ("Round 5: first CPU runs").
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
R="${R:-/work/runs/r5cpu}"

# Encoder ablation at equal samples (seg stage, 600 steps of 4 = 2,400 samples, one learning-rate cycle, same
# seed and data order), the two side by side at nice 19 on the shared CPU. lite2-w20.json (beside this file)
# is `lite2` with decoder and fusion widths 20 (the run used a copy of it under $R).
for model in lite weights/recipe/lite2-w20.json; do
  name="$(basename "$model" .json)"
  nice -n 19 matte train weights/recipe/train_round5.toml --stage seg --model-config "$model" --out "$R/seg-$name" \
    --steps 600 --batch-size 4 --size 320 --workers 1 --threads 1 --seed 5 --optimizer adamw --lr-min 1e-4 \
    --lr-max 1e-3 --half-cycle-epochs 1 --epoch-length 1200 --val weights/recipe/val_people.toml --val-every 300 \
    --ckpt-every 50 --log-every 20 -q &
done
wait

# Fusion and joint after seg-lite (the paper's losses).
nice -n 10 matte train weights/recipe/train_round5.toml --stage fusion --init "$R/seg-lite" --out "$R/fusion-lite" \
  --steps 150 --batch-size 4 --size 320 --workers 1 --threads 2 --seed 5 --optimizer adamw --lr-min 1e-4 \
  --lr-max 1e-3 --epoch-length 300 --half-cycle-epochs 1 --ckpt-every 50 --log-every 10 --val-every 100000 -q
nice -n 10 matte train weights/recipe/train_round5.toml --stage joint --init "$R/fusion-lite" --out "$R/joint-lite" \
  --steps 300 --batch-size 4 --size 320 --workers 1 --threads 2 --seed 5 --optimizer adamw --lr-min 1e-5 \
  --lr-max 1e-4 --epoch-length 600 --half-cycle-epochs 1 --ckpt-every 50 --log-every 10 \
  --val weights/recipe/val_people.toml --val-every 300 -q
weights/recipe/evaluate.sh "$R/joint-lite" "$R/eval-joint-lite"
