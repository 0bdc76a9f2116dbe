"""From `config.data` to train, validation (and test) image sets, the split saved in the workdir.

The source is a TFDS dataset (`data.tfds`, rockjax/data/tfds_source.py), the user's folder
(`data.dir`) or the generated default set. A folder with `train/` and `val/` (or only `test/`) is
used as split (`test/` beside both is the test split); otherwise the images get a seeded,
stratified, duplicate-grouped split. `data.test_fraction` > 0 carves a test split off first, the
same for every fold, which no training, early stopping, checkpoint choice or sweep ever sees (only
`--mode=eval --config.eval.split=test`). `split.json` is reused from the workdir, so a resumed run
and a later evaluation see the same files; `class_names.json` and `data_report.json` sit beside
it. `data.exclude` (rockjax/data/exclude.py) then drops listed photos from training only.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
from absl import logging

from rockjax.data import decoded, dedup, exclude, folder, splits, synthetic
from rockjax.errors import ConfigError, DataError
from rockjax.fileio import write_json

SPLIT_FOLDERS = ('val', 'validation', 'test')  # the validation folder: the first that exists
TEST_FOLDER = 'test'  # beside train/ and val/: the test split


@dataclasses.dataclass
class Dataset:
  train: folder.ImageSet
  val: folder.ImageSet
  class_names: list[str]
  report: dict
  test: folder.ImageSet | None = None  # never used in training; --config.eval.split=test

  @property
  def streamed(self) -> bool:  # data.in_memory: rockjax/data/streaming.py
    return getattr(self.train, 'streamed', False)


def cache_dir(data_config) -> str:
  return os.path.expanduser(data_config.cache_dir or os.environ.get('ROCKJAX_CACHE_DIR')
                            or '~/.cache/rockjax')


def data_root(data_config) -> str:
  """The folder to read: the user's `data.dir`, or the generated set (generated on first use)."""
  if data_config.dir:
    return os.path.abspath(os.path.expanduser(data_config.dir))
  s = data_config.synthetic
  root = synthetic.ensure_dataset(cache_dir(data_config), s.num_per_class, s.image_size, s.seed)
  logging.info('Using the generated rock-texture set at %s (set --config.data.dir to train on '
               'your own photos).', root)
  return root


def explicit_split_folders(root: str) -> tuple[str, str, str | None] | None:
  """(train, val, test or None) sub-folders when `root` is already split into train/ and val/ (or
  test/, then the validation folder); test/ beside train/ and val/ is the test split."""
  if not os.path.isdir(os.path.join(root, 'train')):
    return None
  for name in SPLIT_FOLDERS:
    if os.path.isdir(os.path.join(root, name)):
      test = os.path.join(root, TEST_FOLDER)
      return (os.path.join(root, 'train'), os.path.join(root, name),
              test if name != TEST_FOLDER and os.path.isdir(test) else None)
  return None


def _subset_by_paths(image_set: folder.ImageSet, paths: list[str], what: str) -> folder.ImageSet:
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
  train = _subset_by_paths(image_set, saved_split['train'], 'training')
  val = _subset_by_paths(image_set, saved_split['val'], 'validation')
  test = (_subset_by_paths(image_set, saved_split['test'], 'test') if 'test' in saved_split
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


def shared_split_path(data_config) -> str | None:
  """The split.json that `data.split_from` names (a run's workdir, or a k-fold run's root, whose
  fold_<f>/split.json is used for fold f), or None when it is not set."""
  if not data_config.split_from:
    return None
  base = data_config.split_from
  if data_config.kfold:
    base = os.path.join(base, f'fold_{data_config.fold}')
  path = os.path.join(base, 'split.json')
  if not os.path.exists(path):
    raise ConfigError(f'config.data.split_from: {path!r} does not exist; name the workdir of a run '
                      '(for k-fold: the run directory holding fold_0, fold_1, ...) on the same '
                      'data folder')
  return path


def _carve_test(train, data_config, seed: int, report: dict):
  """(train, test): data.test_fraction of a pre-split training set, grouped and stratified."""
  groups, report['train_duplicates'] = duplicate_groups(train, data_config)
  rest, test_idx = splits.carve_test(train.labels, data_config.test_fraction, seed, groups,
                                     len(train.class_names))
  return train.subset(rest), train.subset(test_idx)


def _from_split_folders(folders, data_config, seed: int, options, cache):
  """(train, val, test, report, split_info) from a folder already split into sub-folders. Without a
  test/ folder, data.test_fraction > 0 carves the test split off train/ (grouped, stratified)."""
  train_root, val_root, test_root = folders
  train = folder.read_folder(train_root, options, cache)
  val = folder.read_folder(val_root, options, cache, class_names=train.class_names)
  test = (folder.read_folder(test_root, options, cache, class_names=train.class_names)
          if test_root else None)
  folder.log_report(train.report, 'train folder')
  folder.log_report(val.report, 'val folder')
  report = dict(train=train.report, val=val.report)
  split_info = dict(method='folders', train_root=train_root, val_root=val_root)
  if test is not None:
    folder.log_report(test.report, 'test folder')
    report['test'], split_info['test_root'] = test.report, test_root
    if data_config.test_fraction > 0:
      logging.warning('%s is the test split; config.data.test_fraction=%s is not applied.',
                      test_root, data_config.test_fraction)
  elif data_config.test_fraction > 0:
    train, test = _carve_test(train, data_config, seed, report)
    split_info.update(test_root=train_root, test_fraction=data_config.test_fraction)
  return train, val, test, report, split_info


def _from_tfds(data_config, seed: int, options, split_path):
  """(train, val, test, report, split_info) from a TFDS dataset: its data.val_split (and
  data.test_split) as given, or, without a val_split, its train split split like a folder."""
  from rockjax.data import streaming, tfds_source  # TensorFlow (Datasets) only on this path
  read = streaming.split_reader(tfds_source.builder(data_config), data_config, options)
  train = read(data_config.train_split)
  test = read(data_config.test_split) if data_config.test_split else None
  if not data_config.val_split:
    train, val, carved, report, info = _split_one_set(train, train.root, data_config, seed,
                                                      split_path)
    if test is not None:
      report['test'], info['test_split'] = test.report, data_config.test_split
    return train, val, test if test is not None else carved, report, info
  val = read(data_config.val_split)
  report = dict(train=train.report, val=val.report, **({'test': test.report} if test else {}))
  if test is None and data_config.test_fraction > 0:
    train, test = _carve_test(train, data_config, seed, report)
  split_info = dict(method='tfds splits', tfds=data_config.tfds,
                    train_split=data_config.train_split, val_split=data_config.val_split,
                    test_split=data_config.test_split, test_fraction=data_config.test_fraction)
  return train, val, test, report, split_info


def _from_one_folder(root: str, data_config, seed: int, options, cache, split_path):
  """(train, val, test, report, split_info) from one class-per-folder tree (or a decoded .npz)."""
  image_set = (decoded.read(root, options) if decoded.is_decoded(root) else
               folder.read_folder(root, options, cache))
  folder.log_report(image_set.report)
  return _split_one_set(image_set, root, data_config, seed, split_path)


def _split_one_set(image_set, root: str, data_config, seed: int, split_path):
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


def load_dataset(config, workdir: str | None = None, write: bool = True) -> Dataset:
  """Reads, splits and describes the data; writes class names, report and split into `workdir`
  (with write=False, only reads the split saved there: evaluation leaves the run's files alone)."""
  data_config = config.data
  options = folder.ReadOptions.from_config(data_config)
  cache = cache_dir(data_config)
  split_path = os.path.join(workdir, 'split.json') if workdir else None
  root = f'tfds:{data_config.tfds}' if data_config.tfds else data_root(data_config)
  explicit = None if data_config.tfds else explicit_split_folders(root)
  if data_config.tfds:
    train, val, test, report, split_info = _from_tfds(data_config, config.seed, options,
                                                      split_path)
  elif explicit:
    train, val, test, report, split_info = _from_split_folders(explicit, data_config, config.seed,
                                                               options, cache)
  else:
    train, val, test, report, split_info = _from_one_folder(root, data_config, config.seed,
                                                            options, cache, split_path)
  if workdir:
    splits.check_class_names(workdir, train.class_names)
  split_lists = dict(train=train.paths, val=val.paths)  # saved whole: data.exclude is re-applied
  split_lists.update({'test': test.paths} if test is not None else {})
  if data_config.exclude:
    listed = exclude.read_list(data_config.exclude, train.root)
    train, report['exclude'] = exclude.exclude_from_training(train, val, test, listed,
                                                             data_config.exclude)
  if len(train) == 0 or len(val) == 0 or (test is not None and len(test) == 0):
    raise DataError(f'the split of {root!r} left {len(train)} training, {len(val)} validation'
                    + (f' and {len(test)} test' if test is not None else '')
                    + ' images; each must be non-empty')
  if workdir and write:
    os.makedirs(workdir, exist_ok=True)
    write_json(os.path.join(workdir, 'class_names.json'), train.class_names)
    write_json(os.path.join(workdir, 'data_report.json'), report)
    if not (split_path and os.path.exists(split_path)):
      write_json(split_path, dict(split_info, root=root, **split_lists))
  logging.info('Split (%s): %d training, %d validation%s images; classes %s',
               split_info['method'], len(train), len(val),
               f', {len(test)} test (held out of training and of every choice)' if test else '',
               train.class_names)
  splits.warn_about_classes(train.class_names, train.labels, val.labels,
                            None if test is None else test.labels)
  return Dataset(train=train, val=val, class_names=train.class_names, report=report, test=test)
