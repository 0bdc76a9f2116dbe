#!/usr/bin/env bash
# The ablation study of docs/ablations.md on any class-per-folder photo set, k-fold cross-validated.
#   scripts/ablation_study.sh /path/to/photos runs/study [K]
# Each row is one sweep run (skipped when finished, resumed when interrupted); tables and curves go
# to <out>/<study>/summary.md, summary.csv and val_accuracy.png. Rows are ordered by how much they
# tell per CPU hour; on 2 CPU cores the whole study takes about 2 hours for 2,000 photos.
set -euo pipefail
data=$(realpath "$1"); out=${2:-runs/study}; k=${3:-5}
cd "$(dirname "$0")/.."
common=(--config.data.dir="$data" --config.data.kfold="$k")
# The reference recipe, as configs/residual.py defines it (32 px, nearest, flips + brightness).
python scripts/sweep.py --config=configs/residual.py "${common[@]}" --root="$out/reference" \
  --sweep=model.dropout=0.2
# The recommended recipe, and one-at-a-time departures from it.
python scripts/sweep.py --config=configs/rocks.py "${common[@]}" --root="$out/image_size" \
  --sweep=data.image_size=64,32
python scripts/sweep.py --config=configs/rocks.py "${common[@]}" --root="$out/augment" \
  --sweep=augment.preset=flip_bright
python scripts/sweep.py --config=configs/rocks.py "${common[@]}" --root="$out/regularisation" \
  --sweep=weight_decay=0.0 --sweep=label_smoothing=0.0
python scripts/sweep.py --config=configs/rocks.py "${common[@]}" --root="$out/block_order" \
  --sweep=model.block_order=relu_bn
