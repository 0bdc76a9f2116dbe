"""K-fold cross-validation: one training run per fold, then mean +- std of best val accuracy.

`run_kfold(config, workdir)` trains fold f into `<workdir>/fold_<f>` (each fold validates a disjoint,
stratified, duplicate-grouped K-th of the images, so every image is validated exactly once), skipping
finished folds and resuming an interrupted one, and writes `<workdir>/kfold.json`.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from absl import logging

from rockjax.fileio import write_json
from rockjax.training import loop, workdir as workdirs


def fold_config(config, fold: int):
  c = config.copy_and_resolve_references()
  c.data.fold = fold
  return c


def aggregate(results: list[dict]) -> dict:
  acc = np.array([r['best_val_accuracy'] for r in results])
  n = np.array([r['num_val'] for r in results])
  return dict(
      num_folds=len(results),
      mean_best_val_accuracy=float(acc.mean()),
      std_best_val_accuracy=float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,  # sample std
      pooled_val_accuracy=float((acc * n).sum() / n.sum()),  # every image counted once
      mean_best_epoch=float(np.mean([r['best_epoch'] for r in results])),
      total_seconds=float(sum(r['elapsed_seconds'] for r in results)),
      folds=results)


def run_kfold(config, workdir: str) -> dict:
  k = config.data.kfold
  folds = range(k) if config.data.fold < 0 else [config.data.fold]
  is_main = jax.process_index() == 0
  results = []
  with workdirs.claim(workdir, config, is_main):  # one k-fold run per root
    for fold in folds:
      fold_dir = os.path.join(workdir, f'fold_{fold}')
      logging.info('=== fold %d of %d (%s) ===', fold + 1, k, fold_dir)
      summary = loop.train_and_evaluate(fold_config(config, fold), fold_dir)
      results.append(dict(fold=fold, workdir=fold_dir,
                          best_val_accuracy=summary['best_val_accuracy'],
                          best_epoch=summary['best_epoch'], epochs=summary['epochs'],
                          elapsed_seconds=summary['elapsed_seconds'], num_val=summary['num_val']))
  out = aggregate(results)
  out['k'] = k
  for r in results:
    logging.info('fold %d: best val accuracy %.2f%% at epoch %d (%d images)', r['fold'],
                 100 * r['best_val_accuracy'], r['best_epoch'], r['num_val'])
  logging.info('%d-fold: mean best val accuracy %.2f%% +- %.2f%% (sample std), pooled %.2f%%',
               k, 100 * out['mean_best_val_accuracy'], 100 * out['std_best_val_accuracy'],
               100 * out['pooled_val_accuracy'])
  if is_main:
    write_json(os.path.join(workdir, 'kfold.json'), out)
  return out
