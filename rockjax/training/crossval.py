"""K-fold cross-validation: one training run per fold, then mean +- std of the final-epoch val
accuracy (no choice was made on it) beside the best epoch's (chosen on the same images: optimistic).

`run_kfold(config, workdir)` trains fold f into `<workdir>/fold_<f>` (each fold validates a disjoint,
stratified, duplicate-grouped K-th of the images, so every image is validated exactly once; with
data.test_fraction, the test split is carved off first and held out of every fold), skipping
finished folds and resuming an interrupted one, and writes `<workdir>/kfold.json`.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from absl import logging

from rockjax.data.partition import fold_dir
from rockjax.fileio import write_json
from rockjax.training import loop, workdir as workdirs


def fold_config(config, fold: int):
  c = config.copy_and_resolve_references()
  c.data.fold = fold
  return c


def write_splits(config, workdir: str) -> list[tuple[str, object]]:
  """Reads and splits the data as training would, without training: split.json, class_names.json
  and data_report.json (k-fold: every fold's, in fold_<f>/), with the config.json training checks
  them against, so training in the same workdir reuses the split and a changed config remakes it.
  [(run directory, its rockjax.data.dataset.Dataset)]."""
  from rockjax.data import dataset as datasets
  if jax.process_index() != 0:  # one writer per workdir, as in training
    return []
  runs = [(workdir, config)]
  if config.data.kfold and config.data.fold < 0:
    runs = [(fold_dir(workdir, f), fold_config(config, f)) for f in range(config.data.kfold)]
  out = []
  with workdirs.claim(workdir, config):
    for run_dir, c in runs:
      if run_dir != workdir:
        workdirs.prepare_workdir(run_dir, c)
      out.append((run_dir, datasets.load_dataset(c, run_dir)))
  return out


def _mean_std(values) -> tuple[float, float]:
  values = np.asarray(values, np.float64)
  return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0  # sample std


def aggregate(results: list[dict]) -> dict:
  best = np.array([r['best_val_accuracy'] for r in results])
  final = np.array([r['final_val_accuracy'] for r in results])
  n = np.array([r['num_val'] for r in results])
  (mean_final, std_final), (mean_best, std_best) = _mean_std(final), _mean_std(best)
  return dict(
      num_folds=len(results),
      mean_final_val_accuracy=mean_final, std_final_val_accuracy=std_final,
      pooled_final_val_accuracy=float((final * n).sum() / n.sum()),  # every image counted once
      mean_best_val_accuracy=mean_best, std_best_val_accuracy=std_best,
      pooled_val_accuracy=float((best * n).sum() / n.sum()),
      mean_best_minus_final=float((best - final).mean()),
      mean_best_epoch=float(np.mean([r['best_epoch'] for r in results])),
      total_seconds=float(sum(r['elapsed_seconds'] for r in results)),
      folds=results)


def use_compilation_cache(workdir: str) -> None:
  """Every fold compiles the same programs (the device-resident training set is padded to one
  size for all folds: rockjax/training/feeding.py); JAX's persistent compilation cache, in
  `<workdir>/compile_cache` unless one is configured (JAX_COMPILATION_CACHE_DIR), compiles them
  once."""
  if jax.config.jax_compilation_cache_dir:
    return
  path = os.path.join(workdir, 'compile_cache')
  jax.config.update('jax_compilation_cache_dir', path)
  logging.info('Compiled programs are cached in %s, so later folds reuse them.', path)


def run_kfold(config, workdir: str) -> dict:
  k = config.data.kfold
  folds = range(k) if config.data.fold < 0 else [config.data.fold]
  is_main = jax.process_index() == 0
  results = []
  with workdirs.claim(workdir, config, is_main):  # one k-fold run per root
    use_compilation_cache(workdir)
    for fold in folds:
      run_dir = fold_dir(workdir, fold)
      logging.info('=== fold %d of %d (%s) ===', fold + 1, k, run_dir)
      summary = loop.train_and_evaluate(fold_config(config, fold), run_dir)
      results.append(dict(fold=fold, workdir=run_dir,
                          final_val_accuracy=summary['final_val_accuracy'],
                          best_val_accuracy=summary['best_val_accuracy'],
                          best_epoch=summary['best_epoch'], epochs=summary['epochs'],
                          elapsed_seconds=summary['elapsed_seconds'], num_val=summary['num_val'],
                          num_test=summary['num_test']))
  out = aggregate(results)
  out['k'] = k
  for r in results:
    logging.info('fold %d: final-epoch val accuracy %.2f%% (epoch %d); best %.2f%% at epoch %d '
                 '(%d images)', r['fold'], 100 * r['final_val_accuracy'], r['epochs'],
                 100 * r['best_val_accuracy'], r['best_epoch'], r['num_val'])
  logging.info('%d-fold: final-epoch val accuracy %.2f%% +- %.2f%% (sample std), pooled %.2f%%; '
               'best-epoch %.2f%% +- %.2f%% (selected on validation: %.2f points higher)', k,
               100 * out['mean_final_val_accuracy'], 100 * out['std_final_val_accuracy'],
               100 * out['pooled_final_val_accuracy'], 100 * out['mean_best_val_accuracy'],
               100 * out['std_best_val_accuracy'], 100 * out['mean_best_minus_final'])
  if is_main:
    write_json(os.path.join(workdir, 'kfold.json'), out)
  return out
