"""Run a grid of configs (ablations) and summarise them side by side.

    python scripts/sweep.py --config=configs/residual.py \
        --sweep=model.dropout=0.1,0.2,0.4 --sweep=augment.preset=crop,flip,flip_bright \
        [--config.num_epochs=30 ...] [--root=runs/my-sweep]

Each combination trains in its own workdir under --root (with --config.data.kfold=K, as a K-fold
cross-validation). Finished runs are skipped and interrupted ones resume, so rerunning the same
command continues an interrupted sweep. Writes <root>/summary.md, <root>/summary.csv and
<root>/val_accuracy.png (the val-accuracy curves of all runs).
Tuple values are written in parentheses: --sweep='model.widths=(16,32,64,128),(32,64,128,256)'.
"""

from __future__ import annotations

import ast
import csv
import itertools
import json
import os
import sys
import time

import _bootstrap  # noqa: F401  (the repository root on sys.path)
from absl import app, flags, logging
from ml_collections import config_flags

import rockjax
from rockjax import cli, configlib, logs, plots, schema
from rockjax.errors import UserError

FLAGS = flags.FLAGS

SMALL_MULTIPLES_FROM = 7  # runs in a sweep from which its curves are drawn one panel each


def define_flags() -> None:
  """The command line's flags (defined when run as a script, not when imported)."""
  config_flags.DEFINE_config_file('config', None, 'Base config file.', lock_config=True)
  flags.DEFINE_multi_string('sweep', [], 'key=v1,v2,...: the values of one swept config field.')
  flags.DEFINE_string('root', None, 'Folder of the sweep (default: runs/sweep-<config>-<hash>).')
  flags.mark_flag_as_required('config')


def split_values(text: str) -> list[str]:
  """Splits 'a,b,(1,2),[3,4]' on the commas that are not inside brackets."""
  parts, depth, current = [], 0, ''
  for ch in text:
    if ch in '([{':
      depth += 1
    elif ch in ')]}':
      depth -= 1
    if ch == ',' and depth == 0:
      parts.append(current)
      current = ''
    else:
      current += ch
  parts.append(current)
  return [p.strip() for p in parts if p.strip()]


def parse_value(text: str, current):
  """A swept value, typed like the config field it replaces."""
  if isinstance(current, str):
    return text
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError) as e:
    raise ValueError(f'cannot read {text!r} as a {type(current).__name__}') from e
  if isinstance(current, bool) or isinstance(value, bool):
    if not isinstance(value, bool) or not isinstance(current, bool):
      raise ValueError(f'{text!r}: expected a {type(current).__name__}')
  elif isinstance(current, float) and isinstance(value, int):
    value = float(value)
  elif isinstance(current, (tuple, list)):
    value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
  elif type(value) is not type(current):
    raise ValueError(f'{text!r} is a {type(value).__name__}, the field is a '
                     f'{type(current).__name__}')
  return value


def parse_sweeps(config, specs: list[str]) -> list[tuple[str, list]]:
  axes = []
  for spec in specs:
    key, sep, values = spec.partition('=')
    if not sep or not values:
      raise configlib.ConfigError(f'--sweep={spec!r}: expected key=v1,v2,...')
    key = key.strip()
    message = configlib.unknown_key_message(config, key)
    if message:
      raise configlib.ConfigError(f'--sweep: {message}')
    current = configlib.get_value(config, key)
    try:
      axes.append((key, [parse_value(v, current) for v in split_values(values)]))
    except ValueError as e:
      raise configlib.ConfigError(f'--sweep {key}: {e}') from e
  return axes


def run_name(assignment: dict) -> str:
  def fmt(v):
    if isinstance(v, (tuple, list)):
      return 'x'.join(str(x) for x in v)
    return str(v)
  name = '_'.join(f'{k}-{fmt(v)}' for k, v in assignment.items()) or 'base'
  return ''.join(c if c.isalnum() or c in '-_.' else '-' for c in name)


def kfold_of(config) -> int:
  """K when a run cross-validates every fold (kfold.json), else 0: a run without k-fold, or one
  fold chosen with data.fold, trains once in its workdir (summary.json), as main.py does."""
  return config.data.kfold if config.data.kfold and config.data.fold < 0 else 0


def finished_summary(workdir: str, kfold: int) -> dict | None:
  """The run's summary when it has finished (every fold, for k-fold), else None."""
  path = os.path.join(workdir, 'kfold.json' if kfold else 'summary.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    summary = json.load(f)
  if kfold:
    return summary if summary.get('num_folds') == kfold else None
  return summary if summary.get('stop_reason') else None


def curve(workdir: str, kfold: int) -> list[tuple[int, float]]:
  """Val accuracy per epoch; for k-fold runs, the mean over the folds that reached each epoch."""
  dirs = [os.path.join(workdir, f'fold_{f}') for f in range(kfold)] if kfold else [workdir]
  per_epoch: dict[int, list[float]] = {}
  for d in dirs:
    for r in rockjax.metrics(d):
      per_epoch.setdefault(r['epoch'], []).append(100 * r['val_accuracy'])
  return [(e, sum(v) / len(v)) for e, v in sorted(per_epoch.items())]


def curve_note(r: dict) -> str:
  """A small-multiple panel's note: the run's final-epoch figure from its table row (a k-fold
  mean curve ends at the mean of the folds that ran longest, not at the folds' own final epochs);
  '' when the run has none."""
  if r['final_val_accuracy'] == '':
    return ''
  return plots.final_epoch_note(r['final_val_accuracy'],
                                None if r['final_std'] == '' else r['final_std'])


def _pct(value) -> float | str:
  return '' if value is None else round(100 * value, 2)


def row(assignment: dict, summary: dict | None, kfold: int, seconds: float, status: str) -> dict:
  """A table row: the final epoch's val accuracy first (no choice was made on it), then the best
  epoch's (selected on the same images); '' where a run finished before final figures existed."""
  r = {k: v for k, v in assignment.items()}
  if summary is None:
    r.update(final_val_accuracy='', final_std='', best_val_accuracy='', std='', best_epoch='',
             wall_seconds=round(seconds, 1), status=status)
  elif kfold:
    r.update(final_val_accuracy=_pct(summary.get('mean_final_val_accuracy')),
             final_std=_pct(summary.get('std_final_val_accuracy')),
             best_val_accuracy=_pct(summary['mean_best_val_accuracy']),
             std=_pct(summary['std_best_val_accuracy']),
             best_epoch=round(summary['mean_best_epoch'], 1),
             wall_seconds=round(summary['total_seconds'], 1), status=status)
  else:
    r.update(final_val_accuracy=_pct(summary.get('final_val_accuracy')), final_std='',
             best_val_accuracy=_pct(summary['best_val_accuracy']), std='',
             best_epoch=summary['best_epoch'], wall_seconds=round(summary['elapsed_seconds'], 1),
             status=status)
  return r


def write_tables(root: str, rows: list[dict], keys: list[str], kfold: int) -> None:
  columns = keys + ['final_val_accuracy', 'final_std', 'best_val_accuracy', 'std', 'best_epoch',
                    'wall_seconds', 'status']
  with open(os.path.join(root, 'summary.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, columns)
    writer.writeheader()
    writer.writerows(rows)
  spread = f', {kfold}-fold mean +- std' if kfold else ''
  header = keys + [f'final-epoch val acc (%){spread}',
                   f'best-epoch val acc (%, selected on val){spread}',
                   'best epoch' + (' (mean)' if kfold else ''), 'wall time (s)', 'status']
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for r in rows:
    final = (f'{r["final_val_accuracy"]} +- {r["final_std"]}' if kfold and r['final_std'] != ''
             else str(r['final_val_accuracy']))
    best = (f'{r["best_val_accuracy"]} +- {r["std"]}' if kfold and r['std'] != ''
            else str(r['best_val_accuracy']))
    cells = [str(r[k]) for k in keys] + [final, best, str(r['best_epoch']),
                                         str(r['wall_seconds']), r['status']]
    lines.append('| ' + ' | '.join(cells) + ' |')
  with open(os.path.join(root, 'summary.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')


def sweep(config, specs: list[str], root: str | None) -> tuple[str, list[dict]]:
  """Runs (or resumes, or skips) every combination; returns the sweep folder and summary rows."""
  axes = parse_sweeps(config, specs)
  root = root or cli.default_workdir(config, prefix='sweep-', extra=repr(axes))
  keys = [k for k, _ in axes]
  grid = [dict(zip(keys, values)) for values in itertools.product(*[v for _, v in axes])]
  configs = []
  for assignment in grid:  # every combination is validated before the first run starts
    c = config.copy_and_resolve_references()
    for key, value in assignment.items():
      configlib.set_value(c, key, value)
    schema.validate(c)
    configs.append(c)
  os.makedirs(root, exist_ok=True)  # only once every combination is known to be valid
  kfold = kfold_of(config)
  logging.info('Sweep of %d run(s) into %s', len(grid), root)
  rows, curves, notes = [], {}, {}
  for n, (assignment, c) in enumerate(zip(grid, configs), start=1):
    name = run_name(assignment)
    workdir = os.path.join(root, name)
    k = kfold_of(c)
    summary = finished_summary(workdir, k)
    start = time.time()
    if summary is not None:
      status = 'done (skipped)'
      logging.info('[%d/%d] %s: already finished, skipped.', n, len(grid), name)
    else:
      logging.info('[%d/%d] %s', n, len(grid), name)
      try:
        summary = cli.run_training(c, workdir)
        status = 'done'
      except Exception as e:  # one failed run must not end the sweep
        logging.exception('Run %s failed', name)
        summary, status = None, f'failed: {type(e).__name__}: {str(e)[:120]}'
    rows.append(row(assignment, summary, k, time.time() - start, status))
    curves[name], notes[name] = curve(workdir, k), curve_note(rows[-1])
    write_tables(root, rows, keys, kfold)  # refreshed after every run
    # a few runs on one plot; more as small multiples (24 lines on one plot cannot be read)
    if any(curves.values()):
      path = os.path.join(root, 'val_accuracy.png')
      ylabel = 'val accuracy (%)' + (f', mean of {kfold} folds' if kfold else '')
      if len(curves) < SMALL_MULTIPLES_FROM:
        plots.overlay_curves(curves, path, ylabel=ylabel)
      else:
        plots.curves_grid(curves, path, ylabel=ylabel, notes=notes)
  logging.info('Sweep summary in %s', os.path.join(root, 'summary.md'))
  return root, rows


def main(argv):
  del argv
  logs.quiet_libraries()
  try:
    root, rows = sweep(FLAGS.config, FLAGS.sweep, FLAGS.root)
  except UserError as e:
    return cli.user_error_status(e)
  failed = [r for r in rows if r['status'].startswith('failed')]
  with open(os.path.join(root, 'summary.md')) as f:
    print(f.read(), end='')
  print(f'tables and curves in {root}')
  return 1 if failed else 0


if __name__ == '__main__':
  define_flags()
  app.run(lambda argv: sys.exit(main(argv)), flags_parser=cli.parse_flags)
