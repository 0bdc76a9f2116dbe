#!/usr/bin/env bash
# The ablation study of docs/ablations.md on any class-per-folder photo set, k-fold cross-validated.
#   scripts/ablation_study.sh /path/to/photos runs/study [K]
# Each row is one sweep run (skipped when finished, resumed when interrupted); tables and curves go
# to <out>/<study>/summary.md, summary.csv and val_accuracy.png, and the whole study's table and
# small-multiple curves to <out>/ablations_table.md and ablations_curves.png (the last step, below;
# docs/ablations.md holds them for rock7). Rows are ordered by how much they
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
# The table and the small-multiple curves of every row (rows already finished are skipped above, so
# rerunning this script on a finished study only redraws them): <out>/ablations_table.md and
# <out>/ablations_curves.png, the rows labelled and ordered as in docs/ablations.md.
r32="$out/rocks32_"
python scripts/ablation_report.py --out="$out/ablations" \
  "reference recipe at its full budget (configs/residual.py), same folds=$out/reference_same_folds/model.dropout-0.2" \
  "reference recipe at its full budget, its own folds=$out/reference/model.dropout-0.2" \
  "start: rocks regularised (dropout 0.2, wd 0.05, ls 0.1), 32 px=$out/rocks32/data.image_size-32" \
  "start, with flip_bright instead of strong=$out/rocks32_augment/augment.preset-flip_bright" \
  "32 px recipe: no dropout, wd, ls (base of the rows below)=$base" \
  "the recipe at 64 px=$out/rocks_image_size/data.image_size-64" \
  "recommended: configs/rocks.py (the recipe at 96 px)=$out/rocks_image_size/data.image_size-96" \
  "the recipe at 128 px=$out/rocks_image_size_large/data.image_size-128" \
  "32 px recipe, 80 epochs=${r32}epochs/num_epochs-80" \
  "32 px recipe, reduce-on-plateau instead of warmup + cosine=${r32}schedule/schedule-plateau" \
  "32 px recipe, + EMA 0.99 + test-time flips=${r32}ema_flip/ema_decay-0.99_test_time_flip-True" \
  "32 px recipe, flip_bright (reference preset) instead of strong=${r32}light_augment/augment.preset-flip_bright" \
  "32 px recipe, flip (reference preset) instead of strong=${r32}reference_augment/augment.preset-flip" \
  "32 px recipe, crop (reference preset) instead of strong=${r32}reference_augment/augment.preset-crop" \
  "32 px recipe, without the random resized crop=${r32}no_crop/augment.crop_min_scale-1.0" \
  "32 px recipe, without 90-degree rotations=${r32}no_rotate/augment.rotate90-False" \
  "32 px recipe, without colour jitter=${r32}no_colour/augment.colour_jitter-0.0" \
  "32 px recipe, + mixup 0.2 / CutMix 1.0=${r32}mix/augment.mixup_alpha-0.2_augment.cutmix_alpha-1.0" \
  "32 px recipe, + dropout 0.2=${r32}dropout/model.dropout-0.2" \
  "32 px recipe, + weight decay 0.05=${r32}weight_decay/weight_decay-0.05" \
  "32 px recipe, + label smoothing 0.1=${r32}label_smoothing/label_smoothing-0.1" \
  "32 px recipe, ReLU-before-BN blocks (reference order)=${r32}block_order/model.block_order-relu_bn" \
  "32 px recipe, 3 convs per stage (deeper)=${r32}depth/model.convs_per_stage-3" \
  "32 px recipe, widths 32-64-128-256 (wider)=${r32}width/model.widths-32x64x128x256"
