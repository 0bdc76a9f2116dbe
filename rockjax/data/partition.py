"""Which image goes to which split: a seeded, stratified split that keeps duplicate photos on one
side (or the validation fold of a K-fold partition), the test split carved off first, and a saved
split (the workdir's split.json, or the one data.split_from names) reused exactly."""

from __future__ import annotations

import json
import os

import numpy as np
from absl import logging

from rockjax.data import dedup, folder, splits
from rockjax.errors import ConfigError


def subset_by_paths(image_set: folder.ImageSet, paths: list[str], what: str) -> folder.ImageSet:
  index = {p: i for i, p in enumerate(image_set.paths)}
  missing = [p for p in paths if p not in index]
  on_disk = os.path.isdir(image_set.root)  # a folder (not a TFDS source): tell gone from broken
  gone = {p for p in missing if on_disk and not os.path.lexists(os.path.join(image_set.root, p))}
  for paths_, state in (([p for p in missing if p in gone], 'no longer in the folder'),
                        ([p for p in missing if p not in gone], 'no longer readable')):
    if paths_:
      logging.warning('%d %s file(s) of the saved split are %s and are left out, e.g. %s',
                      len(paths_), what, state, paths_[:3])
  return image_set.subset([index[p] for p in paths if p in index])


def duplicate_groups(image_set: folder.ImageSet, data_config) -> tuple[np.ndarray | None, dict]:
  """Group ids of copies and near-copies (or None when grouping is off), and a summary."""
  if not data_config.group_duplicates:
    return None, dict(enabled=False)
  if getattr(image_set, 'streamed', False):  # no decoded images: exact copies only
    groups = dedup.duplicate_groups(None, threshold=-1, hashes=image_set.content_hashes)
  else:
    groups = dedup.duplicate_groups(image_set.images, [os.path.join(image_set.root, p) for p in
                                                       image_set.paths],
                                    data_config.duplicate_threshold,
                                    hashes=image_set.content_hashes)
  summary = dedup.group_summary(groups, image_set.labels, image_set.paths, image_set.class_names)
  summary.update(enabled=True, threshold=data_config.duplicate_threshold)
  logging.info('Duplicates: %d groups of copies or near-copies (%d extra images, %d groups across '
               'classes); each group stays on one side of the split.', summary['duplicate_groups'],
               summary['extra_copies'], summary['cross_class_groups'])
  return groups, summary


def split_image_set(image_set: folder.ImageSet, data_config, seed: int,
                    saved_split: dict | None = None, groups: np.ndarray | None = None
                    ) -> tuple[folder.ImageSet, folder.ImageSet, folder.ImageSet | None]:
  """(train, val, test or None). Reuses `saved_split` when given; otherwise carves the test split
  off first (data.test_fraction > 0), then splits the rest with a seeded stratified (group-aware)
  split, or takes the validation fold `data.fold` of a K-fold partition of the rest."""
  if saved_split is not None:
    return _reuse_split(image_set, saved_split, data_config)
  num_classes = len(image_set.class_names)
  labels = image_set.labels
  rest, test = np.arange(len(labels)), None
  if splits.wants_test(data_config.test_fraction, len(labels), data_config.min_test_images):
    rest, test_idx = splits.carve_test(labels, data_config.test_fraction, seed, groups,
                                       num_classes)
    test = image_set.subset(test_idx)
  rest_groups = None if groups is None else np.asarray(groups)[rest]
  if data_config.kfold:
    if data_config.fold < 0:
      raise ConfigError('config.data.fold: a single training run needs one fold (0..K-1); '
                        'rockjax.training.crossval.run_kfold runs them all')
    folds = splits.kfold(labels[rest], data_config.kfold, seed, rest_groups, num_classes)
    splits.require_nonempty_folds(folds, labels[rest], rest_groups)  # before any fold trains
    train_idx, val_idx = folds[data_config.fold]
  else:
    train_idx, val_idx = splits.train_val_split(labels[rest], data_config.val_fraction, seed,
                                                rest_groups, num_classes)
  return image_set.subset(rest[train_idx]), image_set.subset(rest[val_idx]), test


def _reuse_split(image_set: folder.ImageSet, saved_split: dict, data_config):
  train = subset_by_paths(image_set, saved_split['train'], 'training')
  val = subset_by_paths(image_set, saved_split['val'], 'validation')
  test = (subset_by_paths(image_set, saved_split['test'], 'test') if 'test' in saved_split
          else None)
  if test is None and data_config.test_fraction > 0:
    logging.warning('The saved split has no test split: config.data.test_fraction=%s is not '
                    'applied (a saved split is reused exactly; use a new --workdir for a test '
                    'split).', data_config.test_fraction)
  known = set(saved_split['train']) | set(saved_split['val']) | set(saved_split.get('test', ()))
  new = [p for p in image_set.paths if p not in known]
  if new:
    logging.warning('%d file(s) appeared since the split was saved and are not used in this '
                    'workdir (use a new --workdir to include them), e.g. %s', len(new), new[:3])
  return train, val, test


def fold_dir(workdir: str, fold: int) -> str:
  """Where a k-fold run keeps fold `fold` (rockjax/training/crossval.py writes it, split_from reads
  it)."""
  return os.path.join(workdir, f'fold_{fold}')


def shared_split_path(data_config) -> str | None:
  """The split.json that `data.split_from` names (a run's workdir, or a k-fold run's root, whose
  fold_<f>/split.json is used for fold f), or None when it is not set."""
  if not data_config.split_from:
    return None
  base = data_config.split_from
  if data_config.kfold:
    base = fold_dir(base, data_config.fold)
  path = os.path.join(base, 'split.json')
  if not os.path.exists(path):
    raise ConfigError(f'config.data.split_from: {path!r} does not exist; name the workdir of a run '
                      '(for k-fold: the run directory holding fold_0, fold_1, ...) on the same '
                      'data folder')
  return path


def carve_test(train, data_config, seed: int, report: dict):
  """(train, test): data.test_fraction of a pre-split training set, grouped and stratified."""
  groups, report['train_duplicates'] = duplicate_groups(train, data_config)
  rest, test_idx = splits.carve_test(train.labels, data_config.test_fraction, seed, groups,
                                     len(train.class_names))
  return train.subset(rest), train.subset(test_idx)


def split_one_set(image_set, root: str, data_config, seed: int, split_path):
  """The split saved in the workdir, or the one data.split_from names, or a new one."""
  saved = None
  source = split_path if split_path and os.path.exists(split_path) else shared_split_path(
      data_config)
  if source:
    with open(source) as f:
      saved = json.load(f)
    logging.info('Reusing the split saved in %s.', source)
    if saved.get('root') and saved['root'] != root and (
        os.path.abspath(saved['root']) != os.path.abspath(root)):
      logging.warning('The split in %s was made for %s, not %s; files are matched by their '
                      'paths relative to the data folder.', source, saved['root'], root)
  groups, duplicates = (None, dict(reused_saved_split=True)) if saved else duplicate_groups(
      image_set, data_config)
  train, val, test = split_image_set(image_set, data_config, seed, saved, groups)
  report = dict(image_set.report, duplicates=duplicates)
  method = (f'from {source}' if saved and source != split_path else 'saved' if saved else
            f'kfold {data_config.fold}/{data_config.kfold}' if data_config.kfold else 'stratified')
  split_info = dict(method=method, seed=seed, val_fraction=data_config.val_fraction,
                    test_fraction=(saved.get('test_fraction', 0.0) if saved else
                                   data_config.test_fraction),
                    grouped_duplicates=bool(saved.get('grouped_duplicates')) if saved else
                    bool(data_config.group_duplicates),
                    duplicate_groups=saved.get('duplicate_groups') if saved else
                    duplicates.get('duplicate_groups'))
  return train, val, test, report, split_info
