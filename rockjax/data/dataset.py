"""From `config.data` to train, validation (and test) image sets, the split saved in the workdir.

The source (rockjax/data/sources.py, one registry entry each) is a TFDS dataset (`data.tfds`), the
generated default set (no `data.dir`), a decoded `.npz`, a folder already split into `train/` and
`val/` (`test/` beside both is the test split), or one class-per-folder tree. Sets that are not
split get a seeded, stratified, duplicate-grouped split (rockjax/data/partition.py).
`data.test_fraction` > 0 carves a test split off first, the same for every fold, which no training,
early stopping, checkpoint choice or sweep ever sees (only `--mode=eval --config.eval.split=test`).
`split.json` is reused from the workdir, so a resumed run and a later evaluation see the same files;
`class_names.json` and `data_report.json` sit beside it. `data.exclude` (rockjax/data/exclude.py)
then drops listed photos from training only.
"""

from __future__ import annotations

import dataclasses
import os

from absl import logging

from rockjax.data import decoded, dedup, exclude, folder, sources, splits
from rockjax.errors import DataError
from rockjax.fileio import write_json

cache_dir = sources.cache_dir  # the cache folder (weights, decoded folders, the generated set)


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


def data_root(data_config) -> str:
  """The folder (or file) the data section reads: the user's `data.dir`, or the generated set
  (generated on first use); `tfds:<name>` for a TFDS dataset."""
  return sources.pick(data_config).root(data_config)


def load_dataset(config, workdir: str | None = None, write: bool = True) -> Dataset:
  """Reads, splits and describes the data; writes class names, report and split into `workdir`
  (with write=False, only reads the split saved there: evaluation leaves the run's files alone)."""
  data_config = config.data
  options = folder.ReadOptions.from_config(data_config)
  split_path = os.path.join(workdir, 'split.json') if workdir else None
  source = sources.pick(data_config)
  root = source.root(data_config)
  request = sources.Request(data_config, config.seed, options, cache_dir(data_config), split_path)
  train, val, test, report, split_info = source.read(request, root)
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


def decode_folder(data_config, out: str) -> folder.ImageSet:
  """Reads the class-per-folder tree `data.dir` as training would and writes it, decoded, to the
  `.npz` file `out` (rockjax/data/decoded.py): training on that file gives the same images,
  duplicate groups, splits and folds for the same seed, where the photos do not travel."""
  if not data_config.dir:
    raise DataError('config.data.dir: name the photo folder to decode')
  if not decoded.is_decoded(out):
    raise DataError(f'{out!r}: the file name must end in .npz')
  root = data_root(data_config)
  if sources.explicit_split_folders(root):
    raise DataError(f'{root!r} is split into train/ and val/ folders; decode each of them')
  options = folder.ReadOptions.from_config(data_config)
  image_set = folder.read_folder(root, options, cache_dir(data_config))
  hashes = [dedup.content_hash(os.path.join(root, p)) for p in image_set.paths]
  decoded.write(out, image_set, options, hashes)
  return image_set
