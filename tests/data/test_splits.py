"""Stratified, seeded, group-aware splits and folds."""

import numpy as np
import pytest

from rockjax.data import splits

LABELS = np.repeat(np.arange(4), [100, 60, 40, 8])


def test_train_val_split_is_stratified_disjoint_and_complete():
  train, val = splits.train_val_split(LABELS, 0.25, seed=0)
  assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(LABELS)))
  val_counts = np.bincount(LABELS[val], minlength=4)
  np.testing.assert_allclose(val_counts, 0.25 * np.bincount(LABELS), atol=1)


def test_split_is_deterministic_per_seed():
  a = splits.train_val_split(LABELS, 0.25, seed=3)
  b = splits.train_val_split(LABELS, 0.25, seed=3)
  c = splits.train_val_split(LABELS, 0.25, seed=4)
  np.testing.assert_array_equal(a[1], b[1])
  assert not np.array_equal(a[1], c[1])


def test_groups_stay_on_one_side():
  rng = np.random.default_rng(0)
  groups = rng.integers(0, 60, len(LABELS))
  labels = LABELS.copy()
  for g in np.unique(groups):  # a group of duplicates shares its label
    labels[groups == g] = labels[groups == g][0]
  train, val = splits.train_val_split(labels, 0.25, seed=0, groups=groups)
  assert not set(groups[train]) & set(groups[val])
  assert 0.15 < len(val) / len(labels) < 0.35


def test_kfold_validates_every_example_exactly_once_with_class_balance():
  folds = splits.kfold(LABELS, 5, seed=0)
  vals = np.concatenate([v for _, v in folds])
  assert sorted(vals.tolist()) == list(range(len(LABELS)))
  for train, val in folds:
    assert not set(train) & set(val)
    np.testing.assert_allclose(np.bincount(LABELS[val], minlength=4),
                               np.bincount(LABELS) / 5, atol=1)


def test_bad_arguments():
  with pytest.raises(ValueError, match='k >= 2'):
    splits.kfold(LABELS, 1, seed=0)
  with pytest.raises(ValueError, match='sum to 1'):
    splits.assign_groups(LABELS, [0.5, 0.6], seed=0)


def test_test_carve_is_stratified_grouped_and_its_own_seed_stream():
  rng = np.random.default_rng(1)
  groups = rng.integers(0, 120, len(LABELS))
  labels = LABELS.copy()
  for g in np.unique(groups):
    labels[groups == g] = labels[groups == g][0]
  rest, test = splits.carve_test(labels, 0.2, seed=0, groups=groups)
  assert sorted(np.concatenate([rest, test]).tolist()) == list(range(len(labels)))
  assert not set(groups[rest]) & set(groups[test])
  assert 0.12 < len(test) / len(labels) < 0.28
  plain_rest, plain_test = splits.carve_test(LABELS, 0.2, seed=0)
  np.testing.assert_allclose(np.bincount(LABELS[plain_test], minlength=4),
                             0.2 * np.bincount(LABELS), atol=1)
  # Not the same bins as a train/val split with the same seed: the test split has its own stream.
  assert not np.array_equal(plain_test, splits.train_val_split(LABELS, 0.2, seed=0)[1])
  with pytest.raises(ValueError, match='test_fraction'):
    splits.carve_test(LABELS, 0.0, seed=0)


def test_a_split_far_from_the_asked_share_is_explained(caplog):
  """200 classes x 2 photos at val_fraction=0.25 put 50% in validation, silently."""
  labels = np.repeat(np.arange(200), 2)
  with caplog.at_level('WARNING'):
    train, val = splits.train_val_split(labels, 0.25, seed=0)
  assert len(val) == 200  # one photo per class per side is the floor
  assert ('The validation split holds 50.0% of the images, not the asked 25.0%' in caplog.text
          and '200 of 200 classes (as small as 2 photos)' in caplog.text)
  caplog.clear()
  with caplog.at_level('WARNING'):
    splits.train_val_split(LABELS, 0.25, seed=0)  # close to the asked share: nothing to explain
    splits.carve_test(labels, 0.25, seed=0)
  assert 'holds' in caplog.text and 'The test split holds 50.0%' in caplog.text
  assert caplog.text.count('holds') == 1
