"""The table and curves of a k-fold ablation study, from the runs' own files.

    python scripts/ablation_report.py --out=docs/ablations \
        "reference recipe=runs/rock7/reference/model.dropout-0.2" \
        "recommended=runs/rock7/rocks32_no_regularisation/weight_decay-0.0_..." ...

Each argument is `label=DIR`, where DIR is one cross-validated run (it holds kfold.json and
fold_*/). Writes <out>_table.md (one row per run: per-fold and mean +- std final-epoch val accuracy,
which no choice was made on, beside the mean +- std best-epoch val accuracy, selected on the same
images and so optimistic, and their mean difference; final train accuracy, best epoch, wall time
per fold, duplicate groups, a fingerprint of the folds, so rows validated on the same folds can
be told apart from rows that were not, and the CPU model it trained on) and <out>_curves.png
(mean val accuracy over the folds, per epoch, each panel titled with its final-epoch mean).
Unfinished runs are listed with the folds they have.

With --record=FILE (a JSON file, made when missing), every finished row is kept there too, and a row
whose directory is gone or unfinished is taken from the record: a study run over several machines
or sessions, whose run directories do not all survive, still reports every row it finished. A row
neither on disk nor in the record is listed as 'not run yet'.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
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


def read_folds(run_dir: str) -> dict:
  """The facts of one k-fold run (finished or not) that its row is computed from: each fold's
  figures and curve, and the folds' duplicate groups and fingerprint (what a record keeps)."""
  fold_dirs = sorted(glob.glob(os.path.join(run_dir, 'fold_*')),
                     key=lambda d: int(d.rsplit('_', 1)[1]))
  if not fold_dirs:
    raise FileNotFoundError(f'{run_dir!r} holds no fold_* run directories')
  config = _load_json(os.path.join(fold_dirs[0], 'config.json'))
  num_folds = int(config['data']['kfold'])
  patience = int(config.get('early_stopping_patience', 0))
  folds, done_dirs, machines = [], [], set()
  for d in fold_dirs:
    machines.update(machine_of(d))
    records = rockjax.metrics(d)
    if not records:
      continue
    last = records[-1]
    finished = last['epoch'] >= config['num_epochs'] or bool(
        patience and last['epoch'] - last['best_epoch'] >= patience)
    done_dirs += [d] if finished else []
    folds.append(dict(finished=finished, best=last['best_val_accuracy'],
                      final=last['val_accuracy'],
                      best_epoch=last['best_epoch'], epochs=last['epoch'],
                      final_train=last['train_accuracy'], seconds=last['elapsed_seconds'],
                      curve=[(r['epoch'], round(r['val_accuracy'], 6)) for r in records]))
  # The split records the duplicate groups it was made with (a split reused from another run, via
  # data.split_from, carries that run's count).
  groups = _load_json(os.path.join(fold_dirs[0], 'split.json')).get('duplicate_groups')
  return dict(num_folds=num_folds, folds=folds, duplicate_groups=groups,
              folds_id=fold_fingerprint(done_dirs) if len(done_dirs) == num_folds else '-',
              machines=sorted(machines))


def machine_of(run_dir: str) -> set[str]:
  """Where a run trained, from its environment.json ('date: CPU model, N cores'; XLA:CPU compiles
  for the CPU, so the same run can end a little differently on another CPU model)."""
  path = os.path.join(run_dir, 'environment.json')
  if not os.path.exists(path):
    return set()
  return {f'{e["time"][:10]}: {e.get("processor") or "CPU not recorded"}'
          + (f', {e["cpu_count"]} cores' if e.get('cpu_count') else '') for e in _load_json(path)}


def summarise(label: str, facts: dict) -> dict:
  """A row of the table from one run's facts (read_folds, or a record's): per-fold and pooled."""
  folds = facts['folds']
  done = [f for f in folds if f['finished']]
  best = np.array([f['best'] for f in done]) * 100
  final = np.array([f['final'] for f in done]) * 100
  return dict(
      facts, label=label, done=len(done),
      per_fold=[round(float(v), 2) for v in final],
      final_mean=float(final.mean()) if len(final) else float('nan'),
      final_std=float(final.std(ddof=1)) if len(final) > 1 else float('nan'),
      mean=float(best.mean()) if len(best) else float('nan'),
      std=float(best.std(ddof=1)) if len(best) > 1 else float('nan'),
      best_minus_final=float((best - final).mean()) if len(best) else float('nan'),
      final_train=[100 * f['final_train'] for f in done],
      best_epoch=float(np.mean([f['best_epoch'] for f in done])) if done else float('nan'),
      seconds=float(np.median([f['seconds'] for f in done])) if done else float('nan'))


def complete(row: dict) -> bool:
  return bool(row['num_folds']) and row['done'] == row['num_folds']


NOT_RUN = dict(num_folds=0, folds=[], duplicate_groups='-', folds_id='-', machines=[])


def load_record(path: str) -> dict:
  """label -> the facts of every finished row a record keeps ({} when there is no record yet)."""
  if not os.path.exists(path):
    return {}
  rows = _load_json(path)['rows']
  for facts in rows.values():
    for f in facts['folds']:
      f['curve'] = [tuple(p) for p in f['curve']]
  return rows


def save_record(path: str, kept: dict) -> None:
  """Writes the record whole (a temporary file, then a rename), rows in label order."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path + '.tmp', 'w') as f:
    json.dump(dict(about=RECORD_ABOUT, rows=dict(sorted(kept.items()))), f, indent=1)
  os.replace(path + '.tmp', path)


RECORD_ABOUT = ('Finished rows of a k-fold ablation study (scripts/ablation_report.py --record): '
                'per fold its final and best val accuracy, best epoch, epochs run, final train '
                'accuracy, seconds and val-accuracy curve; the duplicate groups and fingerprint '
                'of its folds, and the days and CPUs it trained on. Rows whose run directories '
                'are gone are reported from here.')


def gather(label: str, run_dir: str, kept: dict | None) -> dict:
  """The row of `label`: from its run directory when that holds the whole run; else from the
  record (`kept`, when given) if it keeps it; else what the directory holds (or, with a record,
  'not run yet'). A whole run read from its directory is kept in the record."""
  has_folds = bool(glob.glob(os.path.join(run_dir, 'fold_*')))
  if kept is None and not has_folds:
    raise FileNotFoundError(f'{label}: {run_dir!r} holds no fold_* run directories')
  row = summarise(label, read_folds(run_dir)) if has_folds else None
  if kept is None:
    return row
  if row is not None and complete(row):
    old = summarise(label, dict(NOT_RUN, **kept[label])) if label in kept else None
    if old is not None and old['per_fold'] != row['per_fold']:
      print(f'{label}: the run in {run_dir} ends at {row["per_fold"]} '
            f'({"; ".join(row["machines"])}), the record kept {old["per_fold"]} '
            f'({"; ".join(old["machines"])}); the record now keeps this run', file=sys.stderr)
    kept[label] = {k: row[k] for k in NOT_RUN}
    return row
  if label in kept:
    return summarise(label, dict(NOT_RUN, **kept[label]))
  return row or summarise(label, NOT_RUN)


def markdown(rows: list[dict]) -> str:
  lines = ['| row | per-fold final-epoch val acc (%) | final epoch: mean +- std (%) | '
           'best epoch, selected on val: mean +- std (%) | best - final (points) | '
           'final train acc (%) | best epoch (mean) | wall time per fold | duplicate groups | '
           'folds | CPU |',
           '|---|---|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    if complete(r):
      score = f'**{r["final_mean"]:.2f} +- {r["final_std"]:.2f}**'
      selected = f'{r["mean"]:.2f} +- {r["std"]:.2f}'
      gap = f'{r["best_minus_final"]:+.2f}'
    else:
      score, selected, gap = progress(r), '-', '-'
    train = (f'{min(r["final_train"]):.0f}-{max(r["final_train"]):.0f}'
             if r['final_train'] else '-')
    minutes = f'{r["seconds"] / 60:.1f} min' if r['done'] else '-'
    epoch = f'{r["best_epoch"]:.1f}' if r['done'] else '-'
    lines.append(f'| {r["label"]} | {", ".join(f"{v:.2f}" for v in r["per_fold"]) or "-"} | '
                 f'{score} | {selected} | {gap} | {train} | {epoch} | {minutes} | '
                 f'{r["duplicate_groups"]} | {r["folds_id"]} | {cpu_models(r) or "-"} |')
  return '\n'.join(lines) + '\n'


def cpu_models(row: dict) -> str:
  """The CPU models a row trained on, from its machines ('date: model, N cores'): rows trained on
  the same model repeat each other digit for digit, rows from another model may end a point away."""
  models = {re.sub(r', \d+ cores$', '', m.split(': ', 1)[-1]) for m in row['machines']}
  return ', '.join(sorted(models))


def mean_curve(row: dict) -> list[tuple[int, float]]:
  """Mean val accuracy (%) per epoch over the finished folds, for epochs all of them reached."""
  curves = [dict(f['curve']) for f in row['folds'] if f['finished']]
  if not curves:
    return []
  epochs = sorted(set.intersection(*(set(c) for c in curves)))
  return [(e, 100 * float(np.mean([c[e] for c in curves]))) for e in epochs]


def progress(row: dict) -> str:
  """How far an unfinished row is."""
  if not row['num_folds']:
    return 'not run yet'
  return f'{row["done"]} of {row["num_folds"]} folds done'


def panel_note(row: dict) -> str:
  """Under a run's name in the curves: the table's final-epoch figure. With early stopping the
  mean curve ends at the last epoch every fold reached, not at the folds' own final epochs."""
  if not complete(row):
    return progress(row)
  return plots.final_epoch_note(row['final_mean'], row['final_std'] if row['done'] > 1 else None)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('runs', nargs='+', help='label=DIR of one k-fold run')
  parser.add_argument('--out', required=True, help='path prefix of the table (.md) and curves')
  parser.add_argument('--record', default=None,
                      help='JSON file that keeps every finished row, so that a row whose run '
                           'directory is gone (another machine, a cleaned disk) is still reported')
  args = parser.parse_args(argv)
  kept = None if args.record is None else load_record(args.record)
  rows = []
  for item in args.runs:
    label, sep, run_dir = item.partition('=')
    if not sep or not run_dir:
      parser.error(f'{item!r}: expected label=DIR')
    if kept is None and not os.path.isdir(run_dir):
      parser.error(f'{label}: {run_dir!r} is not a directory')
    rows.append(gather(label, run_dir, kept))
  if kept is not None:
    save_record(args.record, kept)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  table = markdown(rows)
  with open(f'{args.out}_table.md', 'w') as f:
    f.write(table)
  curves = {r['label'].replace('**', ''): mean_curve(r) for r in rows}
  if any(curves.values()):
    plots.curves_grid(curves, f'{args.out}_curves.png', ylabel='val accuracy (%), mean over folds',
                      notes={r['label'].replace('**', ''): panel_note(r) for r in rows})
  print(table)
  return 0


if __name__ == '__main__':
  sys.exit(main())
