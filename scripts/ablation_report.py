"""The table and curves of a k-fold ablation study, from the runs' own files.

    python scripts/ablation_report.py --out=docs/ablations \
        "reference recipe=runs/rock7/reference/model.dropout-0.2" \
        "recommended=runs/rock7/rocks32_no_regularisation/weight_decay-0.0_..." ...

Each argument is `label=DIR`, where DIR is one cross-validated run (it holds kfold.json and
fold_*/). Writes <out>_table.md (one row per run: per-fold and mean +- std final-epoch val accuracy,
which no choice was made on, beside the mean +- std best-epoch val accuracy, selected on the same
images and so optimistic, and their mean difference; final train accuracy, best epoch, wall time
per fold, duplicate groups and a fingerprint of the folds, so rows validated on the same folds can
be told apart from rows that were not) and <out>_curves.png (mean val accuracy over the folds, per
epoch, each panel titled with its final-epoch mean). Unfinished runs are listed with the folds they
have.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import sys

import _bootstrap  # noqa: F401  (the repository root on sys.path)
import numpy as np

import rockjax
from rockjax import plots


def _load_json(path: str):
  with open(path) as f:
    return json.load(f)


def fold_fingerprint(fold_dirs: list[str]) -> str:
  """6 hex digits naming the validation sets of all folds (same folds, same fingerprint)."""
  digest = hashlib.sha256()
  for d in fold_dirs:
    split = _load_json(os.path.join(d, 'split.json'))
    digest.update('\n'.join(sorted(split['val'])).encode())
    digest.update(b'|')
  return digest.hexdigest()[:6]


def summarise(label: str, run_dir: str) -> dict:
  """Per-fold and pooled numbers of one k-fold run (finished or not)."""
  fold_dirs = sorted(glob.glob(os.path.join(run_dir, 'fold_*')),
                     key=lambda d: int(d.rsplit('_', 1)[1]))
  if not fold_dirs:
    raise FileNotFoundError(f'{label}: {run_dir!r} holds no fold_* run directories')
  config = _load_json(os.path.join(fold_dirs[0], 'config.json'))
  num_folds = int(config['data']['kfold'])
  patience = int(config.get('early_stopping_patience', 0))
  folds = []
  for d in fold_dirs:
    records = rockjax.metrics(d)
    if not records:
      continue
    last = records[-1]
    finished = last['epoch'] >= config['num_epochs'] or bool(
        patience and last['epoch'] - last['best_epoch'] >= patience)
    folds.append(dict(dir=d, finished=finished, best=last['best_val_accuracy'],
                      final=last['val_accuracy'],
                      best_epoch=last['best_epoch'], epochs=last['epoch'],
                      final_train=last['train_accuracy'], seconds=last['elapsed_seconds'],
                      curve=[(r['epoch'], r['val_accuracy']) for r in records]))
  done = [f for f in folds if f['finished']]
  # The split records the duplicate groups it was made with (a split reused from another run, via
  # data.split_from, carries that run's count).
  groups = _load_json(os.path.join(fold_dirs[0], 'split.json')).get('duplicate_groups')
  best = np.array([f['best'] for f in done]) * 100
  final = np.array([f['final'] for f in done]) * 100
  return dict(
      label=label, dir=run_dir, num_folds=num_folds, folds=folds, done=len(done),
      per_fold=[round(float(v), 2) for v in final],
      final_mean=float(final.mean()) if len(final) else float('nan'),
      final_std=float(final.std(ddof=1)) if len(final) > 1 else float('nan'),
      mean=float(best.mean()) if len(best) else float('nan'),
      std=float(best.std(ddof=1)) if len(best) > 1 else float('nan'),
      best_minus_final=float((best - final).mean()) if len(best) else float('nan'),
      final_train=[100 * f['final_train'] for f in done],
      best_epoch=float(np.mean([f['best_epoch'] for f in done])) if done else float('nan'),
      seconds=float(np.median([f['seconds'] for f in done])) if done else float('nan'),
      duplicate_groups=groups,
      folds_id=fold_fingerprint([f['dir'] for f in done]) if len(done) == num_folds else '-')


def markdown(rows: list[dict]) -> str:
  lines = ['| row | per-fold final-epoch val acc (%) | final epoch: mean +- std (%) | '
           'best epoch, selected on val: mean +- std (%) | best - final (points) | '
           'final train acc (%) | best epoch (mean) | wall time per fold | duplicate groups | '
           'folds |',
           '|---|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    if r['done'] == r['num_folds']:
      score = f'**{r["final_mean"]:.2f} +- {r["final_std"]:.2f}**'
      selected = f'{r["mean"]:.2f} +- {r["std"]:.2f}'
      gap = f'{r["best_minus_final"]:+.2f}'
    else:
      score, selected, gap = f'{r["done"]} of {r["num_folds"]} folds done', '-', '-'
    train = (f'{min(r["final_train"]):.0f}-{max(r["final_train"]):.0f}'
             if r['final_train'] else '-')
    minutes = f'{r["seconds"] / 60:.1f} min' if r['done'] else '-'
    epoch = f'{r["best_epoch"]:.1f}' if r['done'] else '-'
    lines.append(f'| {r["label"]} | {", ".join(f"{v:.2f}" for v in r["per_fold"]) or "-"} | '
                 f'{score} | {selected} | {gap} | {train} | {epoch} | {minutes} | '
                 f'{r["duplicate_groups"]} | {r["folds_id"]} |')
  return '\n'.join(lines) + '\n'


def mean_curve(row: dict) -> list[tuple[int, float]]:
  """Mean val accuracy (%) per epoch over the finished folds, for epochs all of them reached."""
  curves = [dict(f['curve']) for f in row['folds'] if f['finished']]
  if not curves:
    return []
  epochs = sorted(set.intersection(*(set(c) for c in curves)))
  return [(e, 100 * float(np.mean([c[e] for c in curves]))) for e in epochs]


def panel_note(row: dict) -> str:
  """Under a run's name in the curves: the table's final-epoch figure. With early stopping the
  mean curve ends at the last epoch every fold reached, not at the folds' own final epochs."""
  if row['done'] < row['num_folds']:
    return f'{row["done"]} of {row["num_folds"]} folds done'
  return plots.final_epoch_note(row['final_mean'], row['final_std'] if row['done'] > 1 else None)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('runs', nargs='+', help='label=DIR of one k-fold run')
  parser.add_argument('--out', required=True, help='path prefix of the table (.md) and curves')
  args = parser.parse_args(argv)
  rows = []
  for item in args.runs:
    label, sep, run_dir = item.partition('=')
    if not sep or not run_dir:
      parser.error(f'{item!r}: expected label=DIR')
    if not os.path.isdir(run_dir):
      parser.error(f'{label}: {run_dir!r} is not a directory')
    rows.append(summarise(label, run_dir))
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  table = markdown(rows)
  with open(f'{args.out}_table.md', 'w') as f:
    f.write(table)
  plots.curves_grid({r['label'].replace('**', ''): mean_curve(r) for r in rows},
                    f'{args.out}_curves.png', ylabel='val accuracy (%), mean over folds',
                    notes={r['label'].replace('**', ''): panel_note(r) for r in rows})
  print(table)
  return 0


if __name__ == '__main__':
  sys.exit(main())
