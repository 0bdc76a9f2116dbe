"""`data.exclude=FILE`: photos left out of training, without touching the folder or the split.

The file lists one photo per line (relative to the data folder, as `split.json` and
`label_issues.csv` name them, or absolute); blank lines and lines starting with '#' are ignored,
and a `label_issues.csv` from `--mode=eval` can be given as it is (its `path` column is read).
The split is made (or reused) exactly as without the list, and only the training side loses the
listed photos: validation and test images stay as they were, so a cleaned run is judged on the
same, uncleaned images as the run it is compared with.
"""

from __future__ import annotations

import csv
import os

from absl import logging

from rockjax import fileio
from rockjax.errors import ConfigError


def read_list(path: str, root: str) -> set[str]:
  """The listed photos, as paths relative to `root`."""
  path = os.path.expanduser(path)
  try:
    with open(path, newline='') as f:
      lines = f.read().splitlines()
  except OSError as e:
    raise ConfigError(f'config.data.exclude: cannot read {path!r} ({e.strerror or e})') from e
  if lines and lines[0].split(',')[0].strip() == 'path':  # a csv with a path column
    lines = [fileio.read_cell(row[0]) for row in csv.reader(lines[1:]) if row]
  listed = set()
  for line in lines:
    line = line.strip()
    if not line or line.startswith('#'):
      continue
    if os.path.isabs(line):
      line = os.path.relpath(line, root)
    listed.add(os.path.normpath(line))
  return listed


def exclude_from_training(train, val, test, listed: set[str], source: str):
  """`train` without the listed photos; says what was dropped, kept (val/test) or not found."""
  normalised = [os.path.normpath(p) for p in train.paths]
  keep = [i for i, p in enumerate(normalised) if p not in listed]
  dropped = len(train) - len(keep)
  elsewhere = {os.path.normpath(p) for s in (val, test) if s is not None for p in s.paths}
  kept = listed & elsewhere
  unknown = listed - set(normalised) - elsewhere
  logging.info('data.exclude (%s): %d of %d listed photo(s) left out of training; %d are '
               'validation or test images and stay (those are not cleaned).', source, dropped,
               len(listed), len(kept))
  if unknown:
    logging.warning('data.exclude: %d listed photo(s) are not in this data set, e.g. %s',
                    len(unknown), sorted(unknown)[:3])
  return train.subset(keep), dict(file=source, listed=len(listed), excluded_from_training=dropped,
                                  kept_in_val_or_test=len(kept), not_found=len(unknown))
