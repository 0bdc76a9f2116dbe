#!/usr/bin/env bash
# The ablation study of docs/ablations.md on any class-per-folder photo set, k-fold cross-validated.
#   scripts/ablation_study.sh /path/to/photos runs/study [K]
# Each row is one sweep run (skipped when finished, resumed when interrupted); tables and curves go
# to <out>/<study>/summary.md, summary.csv and val_accuracy.png. Rows are ordered by how much they
# tell per CPU hour: on 2 CPU cores a 32 px row takes ~10 minutes for 2,000 photos, a 64 px row ~35.
set -euo pipefail
data=$(realpath "$1"); out=${2:-runs/study}; k=${3:-5}
cd "$(dirname "$0")/.."
common=(--config.data.dir="$data" --config.data.kfold="$k")
rocks() { python scripts/sweep.py --config=configs/rocks.py "${common[@]}" "$@"; }
# The reference recipe, as configs/residual.py defines it (32 px, nearest, flips + brightness).
python scripts/sweep.py --config=configs/residual.py "${common[@]}" --root="$out/reference" \
  --sweep=model.dropout=0.2
# The recommended recipe (configs/rocks.py) ...
rocks --root="$out/recommended"
# ... and, as the study ran them, the settings it started from (configs/rocks.py before the study:
# dropout 0.2, weight decay 0.05, label smoothing 0.1), at 32 px, then one change at a time.
old=(--config.model.dropout=0.2 --config.weight_decay=0.05 --config.label_smoothing=0.1)
rocks "${old[@]}" --root="$out/rocks32" --sweep=data.image_size=32
rocks "${old[@]}" --root="$out/rocks32_augment" --config.data.image_size=32 \
  --sweep=augment.preset=flip_bright
rocks --root="$out/rocks32_no_regularisation" --config.data.image_size=32 \
  --sweep=weight_decay=0.0 --sweep=label_smoothing=0.0 --sweep=model.dropout=0.0
# One change at a time from the recommended recipe (the rows added in the second study session),
# each on exactly the recommended run's folds (data.split_from), and the reference recipe again on
# those folds (its own preprocessing groups near-copies slightly differently, so its folds differ).
same=(--config.data.split_from="$out/recommended/base")
python scripts/sweep.py --config=configs/residual.py "${common[@]}" "${same[@]}" \
  --root="$out/reference_same_folds" --sweep=model.dropout=0.2
rocks "${same[@]}" --root="$out/rocks32_epochs" --sweep=num_epochs=80
rocks "${same[@]}" --root="$out/rocks32_ema_flip" --sweep=ema_decay=0.99 --sweep=test_time_flip=True
rocks "${same[@]}" --root="$out/rocks32_light_augment" --sweep=augment.preset=flip_bright
rocks "${same[@]}" --root="$out/rocks32_block_order" --sweep=model.block_order=relu_bn
rocks "${same[@]}" --root="$out/rocks32_mix" --sweep=augment.mixup_alpha=0.2 \
  --sweep=augment.cutmix_alpha=1.0
rocks "${same[@]}" --root="$out/rocks_image_size" --sweep=data.image_size=64
# Not run yet (see docs/ablations.md): capacity, and 96 / 128 px (~45 and ~80 min per row).
rocks "${old[@]}" --root="$out/rocks32_reference_capacity" --config.data.image_size=32 \
  --config.model.convs_per_stage=3 --config.model.shortcut_kernels='(5,3,3,3)' \
  --sweep='model.widths=(32,64,128,256)'
rocks "${same[@]}" --root="$out/rocks_image_size_large" --sweep=data.image_size=96,128
