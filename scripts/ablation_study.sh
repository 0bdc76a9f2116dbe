#!/usr/bin/env bash
# The ablation study of docs/ablations.md on any class-per-folder photo set, k-fold cross-validated.
#   scripts/ablation_study.sh /path/to/photos runs/study [K]
# Each row is one sweep run (skipped when finished, resumed when interrupted); tables and curves go
# to <out>/<study>/summary.md, summary.csv and val_accuracy.png. Rows are ordered by how much they
# tell per CPU hour: on 2 CPU cores a 32 px row takes ~16 minutes for 2,000 photos, a 64 px row ~29.
# configs/rocks.py is 96 px since the study's image-size rows; the recipe's parts were ablated at 32 px
# (the cheaper proxy), one change at a time from the 32 px recipe, all on that run's folds.
set -euo pipefail
data=$(realpath "$1"); out=${2:-runs/study}; k=${3:-5}
cd "$(dirname "$0")/.."
# No test split: the study's folds cover every photo, as when its rows were first run (configs/rocks.py
# now holds 10% out by default; a study of its own can drop this and report the test split too).
common=(--config.data.dir="$data" --config.data.kfold="$k" --config.data.test_fraction=0)
rocks() { python scripts/sweep.py --config=configs/rocks.py "${common[@]}" "$@"; }
# The reference recipe, as configs/residual.py defines it (32 px, nearest, flips + brightness, ten
# augmented passes per epoch since 2026-11-29; the rows in docs/ablations.md say which they used).
python scripts/sweep.py --config=configs/residual.py "${common[@]}" --root="$out/reference" \
  --sweep=model.dropout=0.2
# The settings the study started from (configs/rocks.py before it: dropout 0.2, weight decay 0.05,
# label smoothing 0.1) at 32 px, then one change at a time.
old=(--config.model.dropout=0.2 --config.weight_decay=0.05 --config.label_smoothing=0.1)
rocks "${old[@]}" --root="$out/rocks32" --sweep=data.image_size=32
rocks "${old[@]}" --root="$out/rocks32_augment" --config.data.image_size=32 \
  --sweep=augment.preset=flip_bright
# The recipe at 32 px (no dropout, weight decay or label smoothing): the base of every row below,
# which all reuse its folds (data.split_from), so they are validated on exactly the same images.
rocks --root="$out/rocks32_no_regularisation" --config.data.image_size=32 \
  --sweep=weight_decay=0.0 --sweep=label_smoothing=0.0 --sweep=model.dropout=0.0
base="$out/rocks32_no_regularisation/weight_decay-0.0_label_smoothing-0.0_model.dropout-0.0"
same=(--config.data.split_from="$base")
# The reference recipe again, on those folds (its own preprocessing groups near-copies slightly
# differently, so its own folds differ).
python scripts/sweep.py --config=configs/residual.py "${common[@]}" "${same[@]}" \
  --root="$out/reference_same_folds" --sweep=model.dropout=0.2
# Image size: 64 and 96 px (configs/rocks.py has been 96 px since this row).
rocks "${same[@]}" --root="$out/rocks_image_size" --sweep=data.image_size=64,96
# One change at a time from the 32 px recipe.
rocks32() { rocks "${same[@]}" --config.data.image_size=32 "$@"; }
rocks32 --root="$out/rocks32_epochs" --sweep=num_epochs=80
rocks32 --root="$out/rocks32_ema_flip" --sweep=ema_decay=0.99 --sweep=test_time_flip=True
rocks32 --root="$out/rocks32_light_augment" --sweep=augment.preset=flip_bright
rocks32 --root="$out/rocks32_block_order" --sweep=model.block_order=relu_bn
rocks32 --root="$out/rocks32_mix" --sweep=augment.mixup_alpha=0.2 --sweep=augment.cutmix_alpha=1.0
rocks32 --root="$out/rocks32_no_crop" --sweep=augment.crop_min_scale=1.0
rocks32 --root="$out/rocks32_no_rotate" --sweep=augment.rotate90=False
rocks32 --root="$out/rocks32_no_colour" --sweep=augment.colour_jitter=0.0
rocks32 --root="$out/rocks32_depth" --sweep=model.convs_per_stage=3
rocks32 --root="$out/rocks32_width" --sweep='model.widths=(32,64,128,256)'
rocks32 --root="$out/rocks32_reference_augment" --sweep=augment.preset=flip,crop
rocks32 --root="$out/rocks32_schedule" --sweep=schedule=plateau
# The largest input size (~90 minutes per row on 2 CPU cores: 17.5 minutes a fold).
rocks "${same[@]}" --root="$out/rocks_image_size_large" --sweep=data.image_size=128
# Each regulariser of the starting point alone, added back to the 32 px recipe (the study ran
# dropout; weight decay and label smoothing alone not yet).
rocks32 --root="$out/rocks32_dropout" --sweep=model.dropout=0.2
rocks32 --root="$out/rocks32_weight_decay" --sweep=weight_decay=0.05
rocks32 --root="$out/rocks32_label_smoothing" --sweep=label_smoothing=0.1
