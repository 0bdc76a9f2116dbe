"""The label screen: training photos scored out of sample by frozen ImageNet features and a
cross-fitted head; the likeliest label issues are left out of training, never validation photos."""

import csv
import json
import os

import numpy as np
import pytest

from rockjax import errors
from rockjax.serving import label_issues
from rockjax.training import loop, screening
from helpers import assert_png, tiny_config, write_image


def issue(index, given):
  return dict(index=index, given=given)


def test_the_first_issues_are_dropped_within_the_budget_and_half_of_each_class():
  labels = np.array([0] * 4 + [1] * 16)
  issues = [issue(0, 0), issue(1, 0), issue(2, 0), issue(4, 1), issue(5, 1), issue(6, 1)]
  # 25% of 20 photos = 5; class 0 (4 photos) gives at most 2, so the third is passed over.
  assert [r['index'] for r in screening.choose_dropped(issues, labels, 0.25)] == [0, 1, 4, 5, 6]
  assert [r['index'] for r in screening.choose_dropped(issues, labels, 0.1)] == [0, 1]
  assert screening.choose_dropped([], labels, 0.5) == []


def test_inner_folds_are_stratified_and_seeded():
  labels = np.repeat([0, 1, 2], [10, 7, 3])
  part = screening.inner_folds(labels, 3, seed=4)
  for c in range(3):  # each class dealt out as evenly as it can be
    counts = np.bincount(part[labels == c], minlength=3)
    assert counts.max() - counts.min() <= 1
  np.testing.assert_array_equal(part, screening.inner_folds(labels, 3, seed=4))
  assert not np.array_equal(part, screening.inner_folds(labels, 3, seed=5))


def test_the_cross_fitted_head_ranks_flipped_labels_first():
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(3), 40)
  centres = rng.normal(0, 1, (3, 16)) * 4
  features = centres[labels] + rng.normal(0, 1, (120, 16))
  flipped = np.array([3, 50, 90, 110])
  given = labels.copy()
  given[flipped] = (labels[flipped] + 1) % 3
  probabilities = screening.cross_fitted_probabilities(features, given, 3, k=5, seed=0, l2=1e-3,
                                                       steps=100)
  np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)
  # Out of sample: the flipped photos' true classes win, and they are the first issues.
  assert (probabilities.argmax(1)[flipped] == labels[flipped]).all()
  issues = label_issues.find(given, probabilities)
  dropped = screening.choose_dropped(issues, given, 4 / 120)
  assert sorted(r['index'] for r in dropped) == sorted(flipped)


PALETTES = dict(stripes=np.array([[150, 30, 20], [240, 200, 40]]),
                checks=np.array([[20, 30, 110], [230, 230, 230]]))


def pattern(kind: str, rng) -> np.ndarray:
  """A 64 px image of stripes (red and yellow) or of a checkerboard (navy and white), at a random
  scale and phase, its colours jittered."""
  period, (dy, dx) = rng.integers(5, 11), rng.integers(0, 10, 2)
  i, j = np.meshgrid(np.arange(64) + dy, np.arange(64) + dx, indexing='ij')
  cells = (i // period) % 2 if kind == 'stripes' else (i // period + j // period) % 2
  palette = PALETTES[kind] + rng.integers(-20, 21, (2, 3))
  return np.clip(palette[cells], 0, 255).astype(np.uint8)


def misfiled_folder(root, per_class=14, misfiled=2):
  """Photos of stripes and of checkerboards, with `misfiled` of each filed under the other class;
  returns the folder and {misfiled path: the folder it is in}."""
  rng = np.random.default_rng(1)
  wrong = {}
  for name, other in (('stripes', 'checks'), ('checks', 'stripes')):
    for i in range(per_class + misfiled):
      folder = name if i < per_class else other
      path = f'{folder}/{name}_{i}.png'
      write_image(os.path.join(root, path), pattern(name, rng))
      if i >= per_class:
        wrong[path] = folder
  return str(root), wrong


def test_a_run_leaves_out_its_misfiled_training_photos_and_reuses_the_screen(tmp_path,
                                                                              monkeypatch):
  photos, misfiled = misfiled_folder(tmp_path / 'photos')
  config = tiny_config(num_epochs=1, batch_size=8, data__dir=photos, data__val_fraction=0.2,
                       label_screen__drop_fraction=0.15, label_screen__image_size=160,
                       label_screen__folds=3, label_screen__steps=50, label_screen__batch_size=8)
  workdir = str(tmp_path / 'run')
  summary = loop.train_and_evaluate(config, workdir)
  split = json.load(open(os.path.join(workdir, 'split.json')))
  record = json.load(open(os.path.join(workdir, screening.RECORD)))
  misfiled_in_training = {p for p in misfiled if p in split['train']}
  assert misfiled_in_training and misfiled_in_training <= set(record['dropped'])
  assert not set(record['dropped']) & set(split['val'])  # validation photos are never screened
  assert len(record['dropped']) <= int(0.15 * len(split['train']))
  assert summary['num_train'] == len(split['train']) - len(record['dropped'])
  assert summary['num_val'] == len(split['val'])
  with open(os.path.join(workdir, 'label_screen.csv')) as f:
    rows = list(csv.DictReader(f))
  assert [r['path'] for r in rows] == record['dropped']
  assert all(r['given'] != r['suggested'] for r in rows)
  assert_png(os.path.join(workdir, 'label_screen.png'))
  # Resumed, the run reads its screen instead of screening again.
  monkeypatch.setattr(screening, 'photo_features', lambda *a: pytest.fail('screened again'))
  config.num_epochs = 2
  assert loop.train_and_evaluate(config, workdir)['num_train'] == summary['num_train']


def test_the_screen_is_keyed_by_what_decides_it(tmp_path):
  photos, _ = misfiled_folder(tmp_path / 'photos', per_class=3, misfiled=0)
  from rockjax.data import dataset as datasets
  config = tiny_config(data__dir=photos, label_screen__drop_fraction=0.1)
  train = datasets.load_dataset(config, str(tmp_path / 'w')).train
  keys = {screening.cache_key(config, train)}
  for change in (dict(label_screen__folds=3), dict(label_screen__image_size=96),
                 dict(data__aspect='center_crop'), dict(seed=1)):
    overrides = dict(data__dir=photos, label_screen__drop_fraction=0.1, **change)
    keys.add(screening.cache_key(tiny_config(**overrides), train))
  keys.add(screening.cache_key(config, train.subset(range(1, len(train)))))
  edited = train.images.copy()
  edited[0, 0, 0, 0] ^= 1  # a photo edited in place: the same path, other pixels
  import dataclasses
  keys.add(screening.cache_key(config, dataclasses.replace(train, images=edited)))
  assert len(keys) == 7


def test_what_the_screen_cannot_do_is_one_config_error(tmp_path):
  cases = [
      (dict(label_screen__drop_fraction=1.0), 'label_screen.drop_fraction'),
      (dict(label_screen__network='ResidualCNN'), 'has no ImageNet weights'),
      (dict(label_screen__folds=1), 'must be >= 2'),
      (dict(label_screen__method='vote'), 'label_screen.method'),
      (dict(label_screen__drop_fraction=0.1, data__tfds='tf_flowers'), 'a TFDS dataset'),
  ]
  for overrides, message in cases:
    with pytest.raises(errors.ConfigError, match=message):
      tiny_config(**overrides)
  from rockjax.data import folder
  gone = folder.ImageSet(np.zeros((1, 8, 8, 3), np.uint8), np.zeros(1, np.int32), ['a/x.png'],
                         ['a'], str(tmp_path / 'gone'), {})
  with pytest.raises(errors.ConfigError, match='reads the photos from their files'):
    screening.photo_features(tiny_config(label_screen__drop_fraction=0.1), gone)


def test_without_a_drop_fraction_the_data_is_untouched(tmp_path):
  config = tiny_config()
  sentinel = object()
  assert screening.screen(config, sentinel, str(tmp_path), True) is sentinel
  assert not os.path.exists(os.path.join(tmp_path, screening.RECORD))
