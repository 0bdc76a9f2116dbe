"""Where a run's images come from: one registry entry per kind of source, asked in order.

| source | chosen when | read as |
|---|---|---|
| `tfds` | `data.tfds` names a TensorFlow Datasets set | its splits, in memory or streamed (tfds_source.py, streaming.py) |
| `generated` | `data.dir` is empty | the procedural rock-texture set, made on first use (synthetic.py) |
| `decoded` | `data.dir` is a `.npz` from scripts/decode_folder.py | the decoded folder it holds (decoded.py) |
| `split_folders` | `data.dir` holds `train/` and `val/` (or `validation/`, or `test/`) | those folders as the split (`test/` beside both: the test split) |
| `folder` | any other `data.dir` | one class-per-folder tree, split by rockjax (dataset.py) |

Each entry knows how to find its root (what split.json records), read its images into train,
validation and test sets, and describe itself in one line. Adding a source is one `Source` and one
line in SOURCES; rockjax/data/dataset.py asks `pick(data_config)` and nothing else.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

from absl import logging

from rockjax.data import decoded, folder, partition, synthetic

SPLIT_FOLDERS = ('val', 'validation', 'test')  # the validation folder: the first that exists
TEST_FOLDER = 'test'  # beside train/ and val/: the test split


@dataclasses.dataclass(frozen=True)
class Request:
  """What a source reads with: the data section, the run's seed, decoding options, the cache
  folder and the workdir's split.json (None outside a workdir)."""
  data_config: object
  seed: int
  options: object
  cache: str
  split_path: str | None


@dataclasses.dataclass(frozen=True)
class Source:
  name: str
  description: str  # one line: what it reads
  matches: Callable[[object], bool]  # data_config -> whether this source is the one
  root: Callable[[object], str]  # data_config -> the root split.json records (may generate it)
  read: Callable  # (request, root) -> (train, val, test or None, report, split_info)


def cache_dir(data_config) -> str:
  return os.path.expanduser(data_config.cache_dir or os.environ.get('ROCKJAX_CACHE_DIR')
                            or '~/.cache/rockjax')


def user_dir(data_config) -> str:
  return os.path.abspath(os.path.expanduser(data_config.dir))


def generated_root(data_config) -> str:
  s = data_config.synthetic
  root = synthetic.ensure_dataset(cache_dir(data_config), s.num_per_class, s.image_size, s.seed)
  logging.info('Using the generated rock-texture set at %s (set --config.data.dir to train on '
               'your own photos).', root)
  return root


def explicit_split_folders(root: str) -> tuple[str, str, str | None] | None:
  """(train, val, test or None) sub-folders when `root` is already split into train/ and val/ (or
  validation/, or only test/); None otherwise."""
  if not os.path.isdir(os.path.join(root, 'train')):
    return None
  for name in SPLIT_FOLDERS:
    if os.path.isdir(os.path.join(root, name)):
      test = os.path.join(root, TEST_FOLDER)
      return (os.path.join(root, 'train'), os.path.join(root, name),
              test if name != TEST_FOLDER and os.path.isdir(test) else None)
  return None


_REGISTRY: list[Source] = []


def register(source: Source) -> None:
  if any(s.name == source.name for s in _REGISTRY):
    raise ValueError(f'a data source named {source.name!r} is already registered')
  _REGISTRY.append(source)


def sources() -> tuple[Source, ...]:
  return tuple(_REGISTRY)


def pick(data_config) -> Source:
  """The first registered source that matches the data section (`folder` matches any data.dir)."""
  for source in _REGISTRY:
    if source.matches(data_config):
      return source
  raise ValueError(f'no data source matches data.dir={data_config.dir!r}, '
                   f'data.tfds={data_config.tfds!r}')  # unreachable with `folder` registered


def is_generated(data_config) -> bool:
  """Whether the run trains on the generated default set (its figures say nothing of photos)."""
  return pick(data_config).name == 'generated'


def _read_one_set(request: Request, root: str, image_set):
  """One set of images, split by rockjax (partition.py)."""
  folder.log_report(image_set.report)
  return partition.split_one_set(image_set, root, request.data_config, request.seed,
                                 request.split_path)


def _read_split_folders(request: Request, root: str):
  """A folder already split into sub-folders. Without a test/ folder, data.test_fraction > 0
  carves the test split off train/ (grouped, stratified)."""
  data_config, options, cache = request.data_config, request.options, request.cache
  train_root, val_root, test_root = explicit_split_folders(root)
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
    train, test = partition.carve_test(train, data_config, request.seed, report)
    split_info.update(test_root=train_root, test_fraction=data_config.test_fraction)
  return train, val, test, report, split_info


def _read_tfds(request: Request, root: str):
  """A TFDS dataset: its data.val_split (and data.test_split) as given, or, without a val_split,
  its train split split like a folder."""
  from rockjax.data import streaming, tfds_source  # TensorFlow (Datasets) only on this path
  data_config, seed = request.data_config, request.seed
  read = streaming.split_reader(tfds_source.builder(data_config), data_config, request.options)
  train = read(data_config.train_split)
  test = read(data_config.test_split) if data_config.test_split else None
  if not data_config.val_split:
    train, val, carved, report, info = partition.split_one_set(train, train.root, data_config,
                                                               seed, request.split_path)
    if test is not None:
      report['test'], info['test_split'] = test.report, data_config.test_split
    return train, val, test if test is not None else carved, report, info
  val = read(data_config.val_split)
  report = dict(train=train.report, val=val.report, **({'test': test.report} if test else {}))
  if test is None and data_config.test_fraction > 0:
    train, test = partition.carve_test(train, data_config, seed, report)
  split_info = dict(method='tfds splits', tfds=data_config.tfds,
                    train_split=data_config.train_split, val_split=data_config.val_split,
                    test_split=data_config.test_split, test_fraction=data_config.test_fraction)
  return train, val, test, report, split_info


def _read_folder(request: Request, root: str):
  return _read_one_set(request, root, folder.read_folder(root, request.options, request.cache))


# The built-in sources, in the order they are asked (the first that matches is the source).
for _source in (
    Source('tfds', 'a TensorFlow Datasets set by name (data.tfds)',
           lambda d: bool(d.tfds), lambda d: f'tfds:{d.tfds}', _read_tfds),
    Source('generated', 'the generated rock-texture set (no data.dir)',
           lambda d: not d.dir, generated_root, _read_folder),
    Source('decoded', 'a decoded folder (a .npz written by scripts/decode_folder.py)',
           lambda d: decoded.is_decoded(user_dir(d)), user_dir,
           lambda request, root: _read_one_set(request, root,
                                               decoded.read(root, request.options))),
    Source('split_folders', 'a folder split into train/ and val/ (and test/)',
           lambda d: explicit_split_folders(user_dir(d)) is not None, user_dir,
           _read_split_folders),
    Source('folder', 'one class-per-folder tree of photos (data.dir)',
           lambda d: True, user_dir, _read_folder),
):
  register(_source)
