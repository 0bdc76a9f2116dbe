#!/usr/bin/env bash
# The ablation study of docs/ablations.md on any class-per-folder photo set, k-fold cross-validated.
#   scripts/ablation_study.sh /path/to/photos runs/study [K [RECORD]]
# Each row is one sweep run (skipped when finished, resumed when interrupted); tables and curves go
# to <out>/<row>/summary.md, summary.csv and val_accuracy.png. After each row, the whole study's
# table and small-multiple curves go to <out>/ablations_table.md and ablations_curves.png, and its
# finished rows to RECORD (default <out>/ablations_rows.json; for rock7,
# results/ablations_rock7_rows.json): a row kept there is not run again, so a study spread over
# machines or sessions whose run directories do not survive goes on where it stopped. Rows run
# (and are tabled) in the order of how much they tell per CPU hour: the 32 px recipe whose folds
# every row reuses, the reference and the recommended recipe on those folds, then one change at a
# time. On 2 CPU cores, for 2,000 photos, a 32 px row takes ~16 minutes, a 64 px row ~29, a 96 px
# row ~55, a 128 px row ~90 and a reference row ~65 (ten passes per epoch, stopped early).
# configs/rocks.py is 96 px since the study's image-size rows; the recipe's parts were ablated at
# 32 px (the cheaper proxy).
set -euo pipefail
data=$(realpath "$1"); out=${2:-runs/study}; k=${3:-5}; record=${4:-$out/ablations_rows.json}
cd "$(dirname "$0")/.."
# No test split: the study's folds cover every photo, as when its rows were first run (configs/rocks.py
# now holds 10% out by default; a study of its own can drop this and report the test split too).
common=(--config.data.dir="$data" --config.data.kfold="$k" --config.data.test_fraction=0)
rows=()  # label=DIR of every row, in the order of the table
kept() {  # is this row's label among the finished rows the record keeps?
  [ -f "$record" ] && python -c 'import json, sys
sys.exit(sys.argv[2] not in json.load(open(sys.argv[1]))["rows"])' "$record" "$1"
}
report() {
  python scripts/ablation_report.py --out="$out/ablations" --record="$record" "${rows[@]}"
}
row() {  # row LABEL DIR COMMAND...: the row DIR that COMMAND runs, unless the record keeps LABEL
  local label=$1 dir=$2; shift 2
  rows+=("$label=$dir")
  if kept "$label"; then echo "kept in $record: $label"; return; fi
  "$@"
  report >/dev/null
}
sweep() { python scripts/sweep.py "$1" "${common[@]}" "${@:2}"; }  # $1: --config=FILE
rocks() { sweep --config=configs/rocks.py "$@"; }
# The recipe at 32 px (configs/rocks.py at 32 px, whose dropout, weight decay and label smoothing
# are 0): every row but the first study's reference and the starting point reuses its folds
# (data.split_from), so they are validated on exactly the same images. Where the record keeps it,
# only its folds are written again when its directory is missing (seconds, not ~16 minutes).
base_set=(weight_decay=0.0 label_smoothing=0.0 model.dropout=0.0)  # its changes to the recipe
base_run() {
  rocks --root="$out/rocks32_no_regularisation" --config.data.image_size=32 \
    "${base_set[@]/#/--sweep=}"
}
base="$out/rocks32_no_regularisation/weight_decay-0.0_label_smoothing-0.0_model.dropout-0.0"
row "32 px recipe: no dropout, wd, ls (base of the rows below)" "$base" base_run
same() {  # same COMMAND...: COMMAND on the base's folds
  # Where the record keeps the base but its directory is gone, its folds are written again without
  # training (--mode=split, same config: the split is deterministic; the folds column checks it).
  [ -f "$base/fold_$((k - 1))/split.json" ] || python main.py --mode=split \
    --config=configs/rocks.py "${common[@]}" --config.data.image_size=32 \
    "${base_set[@]/#/--config.}" --workdir="$base"
  "$@" --config.data.split_from="$base"
}
# The reference recipe, as configs/residual.py defines it (32 px, nearest, flips + brightness, ten
# augmented passes per epoch since 2026-11-29; the rows in docs/ablations.md say which they used).
row "reference recipe at its full budget (configs/residual.py), same folds" \
  "$out/reference_same_folds/model.dropout-0.2" \
  same sweep --config=configs/residual.py --root="$out/reference_same_folds" \
  --sweep=model.dropout=0.2
# Image size (configs/rocks.py has been 96 px since these rows; 128 px did not beat it).
size_row() {
  row "$1" "$out/rocks_image_size_$2/data.image_size-$2" \
    same rocks --root="$out/rocks_image_size_$2" --sweep=data.image_size="$2"
}
size_row "recommended: configs/rocks.py (the recipe at 96 px)" 96
size_row "the recipe at 64 px" 64
# One change at a time from the 32 px recipe: row32 LABEL ROOT KEY=VALUE... (one run per row).
row32() {
  local label=$1 root=$out/rocks32_$2; shift 2
  local name sweeps=()
  name=$(IFS=_; echo "${*//=/-}")  # the run's directory, as scripts/sweep.py names it
  name=${name//[()]/}
  for kv in "$@"; do sweeps+=(--sweep="$kv"); done
  row "32 px recipe, $label" "$root/${name//,/x}" \
    same rocks --config.data.image_size=32 --root="$root" "${sweeps[@]}"
}
# The augmentation: the parts of the strong preset, then the reference's presets in its place.
row32 "without the random resized crop" no_crop augment.crop_min_scale=1.0
row32 "without 90-degree rotations" no_rotate augment.rotate90=False
row32 "without colour jitter" no_colour augment.colour_jitter=0.0
row32 "crop (reference preset) instead of strong" reference_augment_crop augment.preset=crop
row32 "flip (reference preset) instead of strong" reference_augment_flip augment.preset=flip
row32 "flip_bright (reference preset) instead of strong" light_augment augment.preset=flip_bright
# Each regulariser of the starting point (below) alone, added back to the 32 px recipe.
row32 "+ dropout 0.2" dropout model.dropout=0.2
row32 "+ weight decay 0.05" weight_decay weight_decay=0.05
row32 "+ label smoothing 0.1" label_smoothing label_smoothing=0.1
# The settings the study started from (configs/rocks.py before it: dropout 0.2, weight decay 0.05,
# label smoothing 0.1) at 32 px, on their own folds as first run.
old=(--config.model.dropout=0.2 --config.weight_decay=0.05 --config.label_smoothing=0.1)
row "start: rocks regularised (dropout 0.2, wd 0.05, ls 0.1), 32 px" \
  "$out/rocks32/data.image_size-32" \
  rocks "${old[@]}" --root="$out/rocks32" --sweep=data.image_size=32
row "start, with flip_bright instead of strong" "$out/rocks32_augment/augment.preset-flip_bright" \
  rocks "${old[@]}" --root="$out/rocks32_augment" --config.data.image_size=32 \
  --sweep=augment.preset=flip_bright
# Training and network.
row32 "+ mixup 0.2 / CutMix 1.0" mix augment.mixup_alpha=0.2 augment.cutmix_alpha=1.0
row32 "+ EMA 0.99 + test-time flips" ema_flip ema_decay=0.99 test_time_flip=True
row32 "reduce-on-plateau instead of warmup + cosine" schedule schedule=plateau
row32 "ReLU-before-BN blocks (reference order)" block_order model.block_order=relu_bn
row32 "3 convs per stage (deeper)" depth model.convs_per_stage=3
row32 "widths 32-64-128-256 (wider)" width 'model.widths=(32,64,128,256)'
row32 "80 epochs" epochs num_epochs=80
# The largest input size, and the reference recipe on its own folds (the first study's).
size_row "the recipe at 128 px" 128
row "reference recipe at its full budget (configs/residual.py), its own folds" \
  "$out/reference/model.dropout-0.2" \
  sweep --config=configs/residual.py --root="$out/reference" --sweep=model.dropout=0.2
# The table and the small-multiple curves of every row, in the order above (a row neither finished
# here nor kept in the record is listed as 'not run yet'): <out>/ablations_table.md and
# <out>/ablations_curves.png. Rerunning this script on a finished study only redraws them.
report
