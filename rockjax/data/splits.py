"""Seeded, stratified, group-aware assignment of examples to a train/val split or to k folds.

`assign_groups` puts every group of examples (a photo and its duplicates; by default each example is
its own group) into one bin, so that each bin's class counts track its target fraction. It serves
the test split carved off first (`carve_test`), the train/val split (fractions 1 - f, f) and k-fold
cross-validation (k equal fractions). `warn_about_classes` and `check_class_names` guard the class
lists the splits carry.
"""

from __future__ import annotations

import json
import os

import numpy as np
from absl import logging

from rockjax.errors import DataError


def assign_groups(labels: np.ndarray, fractions, seed: int, groups: np.ndarray | None = None,
                  num_classes: int | None = None) -> np.ndarray:
  """Returns, per example, the index of the bin it goes to.

  Groups are placed largest first (ties in a seeded random order), each into the bin whose classes
  (weighted by the group's own class counts) are furthest below their target counts. With
  singleton groups this gives per-class counts within one of the exact stratified split.
  """
  labels = np.asarray(labels, dtype=np.int64)
  n = len(labels)
  fractions = np.asarray(fractions, dtype=np.float64)
  if n == 0:
    return np.zeros(0, np.int64)
  if np.any(fractions <= 0) or not np.isclose(fractions.sum(), 1.0):
    raise ValueError(f'fractions must be positive and sum to 1, got {fractions.tolist()}')
  groups = np.arange(n) if groups is None else np.asarray(groups)
  _, group_index = np.unique(groups, return_inverse=True)
  num_groups = group_index.max() + 1
  num_classes = int(num_classes or labels.max() + 1)
  group_counts = np.zeros((num_groups, num_classes), np.int64)
  np.add.at(group_counts, (group_index, labels), 1)
  targets = fractions[:, None] * np.bincount(labels, minlength=num_classes)[None, :]
  filled = np.zeros_like(targets)
  rng = np.random.default_rng(seed)
  order = rng.permutation(num_groups)
  order = order[np.argsort(-group_counts[order].sum(1), kind='stable')]
  group_bin = np.empty(num_groups, np.int64)
  for g in order:
    counts = group_counts[g]
    need = ((targets - filled) / np.maximum(targets, 1e-9)) @ counts
    b = int(np.argmax(need))
    group_bin[g] = b
    filled[b] += counts
  return group_bin[group_index]


FRACTION_TOLERANCE = 0.03  # a split further than this from the asked share is explained in the log


def train_val_split(labels, val_fraction: float, seed: int, groups=None,
                    num_classes: int | None = None, what: str = 'validation'
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Index arrays (train, val) of a seeded stratified split that keeps each group on one side."""
  bins = assign_groups(labels, [1.0 - val_fraction, val_fraction], seed, groups, num_classes)
  explain_fraction(labels, bins == 1, val_fraction, what, groups is not None)
  return np.flatnonzero(bins == 0), np.flatnonzero(bins == 1)


def explain_fraction(labels, chosen: np.ndarray, asked: float, what: str, grouped: bool) -> None:
  """Says why the share of images in the `what` split is far from the asked one: each class is
  split by whole photos (and whole duplicate groups), so a class of few photos cannot match it."""
  labels = np.asarray(labels)
  got = float(np.mean(chosen)) if len(labels) else asked
  if abs(got - asked) <= FRACTION_TOLERANCE:
    return
  classes, totals = np.unique(labels, return_counts=True)
  taken = np.array([int(np.sum(chosen[labels == c])) for c in classes])
  off = np.abs(taken - asked * totals) >= 0.5
  logging.warning(
      'The %s split holds %.1f%% of the images, not the asked %.1f%%: each class is split by whole '
      'photos%s, and %d of %d classes (as small as %d photos) cannot be split near that share; '
      'add photos to small classes, or use data.kfold, which validates every photo once.', what,
      100 * got, 100 * asked, ' and whole duplicate groups' if grouped else '', int(off.sum()),
      len(classes), int(totals[off].min()) if off.any() else int(totals.min()))


def kfold(labels, k: int, seed: int, groups=None,
          num_classes: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
  """K (train, val) index pairs; every example is validated in exactly one fold."""
  if k < 2:
    raise ValueError(f'k-fold needs k >= 2, got {k}')
  bins = assign_groups(labels, [1.0 / k] * k, seed, groups, num_classes)
  return [(np.flatnonzero(bins != f), np.flatnonzero(bins == f)) for f in range(k)]


def require_nonempty_folds(folds, labels, groups=None) -> None:
  """A DataError when some fold of `kfold` has no training or no validation example (more folds
  than a class has images or groups): found when the first fold loads, not when the empty one
  does, after the folds before it trained."""
  empty = [f for f, (train, val) in enumerate(folds) if not len(train) or not len(val)]
  if not empty:
    return
  labels = np.asarray(labels)
  units = (f'{len(labels)} images' if groups is None else
           f'{len(labels)} images in {len(np.unique(groups))} duplicate groups')
  counts = np.bincount(labels)
  raise DataError(f'config.data.kfold: {len(folds)}-fold cross-validation of {units} leaves '
                  f'{len(empty)} fold(s) without a training or validation image (folds '
                  f'{empty[:10]}{" ..." if len(empty) > 10 else ""}); stratified folds need about '
                  f'K images of every class, and the smallest class has {counts[counts > 0].min()}:'
                  ' lower data.kfold')


def test_seed(seed: int) -> int:
  """The seed of the test carve: its own stream, so the test split does not move with the folds."""
  return int(np.random.SeedSequence([int(seed), 0x7E57]).generate_state(1)[0])


def carve_test(labels, test_fraction: float, seed: int, groups=None,
               num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Index arrays (rest, test): a stratified, group-aware test split, made before any train/val
  split or fold, so it is the same for every fold of a k-fold run."""
  if not 0.0 < test_fraction < 1.0:
    raise ValueError(f'test_fraction must be in (0, 1), got {test_fraction}')
  return train_val_split(labels, test_fraction, test_seed(seed), groups, num_classes, what='test')



def wants_test(test_fraction: float, num_images: int, min_images: int) -> bool:
  """Whether to carve a test split: test_fraction > 0, and (when min_images > 0) a split of at
  least min_images; a smaller one is skipped with a warning (too few to report an accuracy on)."""
  expected = int(round(test_fraction * num_images))
  if 0 < expected < min_images:
    logging.warning('No test split: %d%% of %d photos is %d, fewer than data.min_test_images=%d, '
                    'too few to report an accuracy on; every photo trains or validates.',
                    round(100 * test_fraction), num_images, expected, min_images)
    return False
  return test_fraction > 0


def warn_about_classes(class_names, train_labels, val_labels, test_labels=None) -> None:
  """A split a classifier cannot learn or be judged on: said in the log, not silently run."""
  if len(class_names) < 2:
    logging.warning('The data set has a single class (%s): every prediction is that class, and '
                    'accuracy says nothing. Add a sub-folder per class.', list(class_names))
  for labels, what, consequence, fix in (
      (train_labels, 'training', 'the network cannot learn them and every validation image of '
       'them counts as an error', 'add photos, or list fewer of them in data.exclude'),
      (val_labels, 'validation', 'their accuracy is not measured', 'add photos or lower data.kfold'),
      (test_labels, 'test', 'their accuracy is not measured', 'add photos or raise '
       'data.test_fraction')):
    if labels is None:
      continue
    counts = np.bincount(labels, minlength=len(class_names))
    missing = [n for n, c in zip(class_names, counts) if c == 0]
    if missing:
      logging.warning('No %s image of class(es) %s: %s; %s.', what, missing, consequence, fix)


def check_class_names(workdir: str, class_names: list[str]) -> None:
  """Refuses classes other than the run's: label i names the i-th class, so a renamed, added or
  removed class folder would silently relabel every image of the classes after it."""
  path = os.path.join(workdir, 'class_names.json')
  if not os.path.exists(path):
    return
  with open(path) as f:
    saved = json.load(f)
  if list(saved) != list(class_names):
    raise DataError(f'the data folder now has classes {list(class_names)}, but the run in '
                    f'{workdir!r} was made with {list(saved)} ({path}); a label is a class\'s '
                    f'position in that list, so this run cannot use these folders. Train in a new '
                    f'workdir (with --config.init_from={workdir} to start from this run\'s weights), '
                    f'or restore the old folder names')
