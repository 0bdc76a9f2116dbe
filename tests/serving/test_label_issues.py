"""The label-issue finder: per-class thresholds, what is flagged and how it is ranked, its files."""

import csv
import os

import numpy as np
import pytest

from rockjax.data import folder
from rockjax.serving import label_issues
from helpers import assert_png


def test_thresholds_are_the_mean_self_probability_of_each_class():
  labels = np.array([0, 0, 1, 1])
  probs = np.array([[0.9, 0.1, 0.0], [0.7, 0.3, 0.0], [0.4, 0.6, 0.0], [0.2, 0.8, 0.0]])
  np.testing.assert_allclose(label_issues.class_thresholds(labels, probs)[:2], [0.8, 0.7])
  assert label_issues.class_thresholds(labels, probs)[2] == np.inf  # no example: never suggested


def test_a_photo_is_flagged_when_another_class_reaches_its_threshold_ranked_by_margin():
  labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
  probs = np.array([
      [0.9, 0.1], [0.8, 0.2], [0.7, 0.3],
      [0.1, 0.9],  # labelled 0, confidently 1: flagged, margin 0.8
      [0.2, 0.8], [0.1, 0.9], [0.3, 0.7],
      [0.55, 0.45],  # labelled 1; 0.55 is below class 0's threshold (0.625): not flagged
  ])
  issues = label_issues.find(labels, probs)
  assert [r['index'] for r in issues] == [3]
  assert issues[0]['suggested'] == 1 and issues[0]['margin'] == pytest.approx(0.8)
  # A stronger mislabel ranks first.
  labels2 = np.append(labels, 1)
  probs2 = np.vstack([probs, [0.99, 0.01]])
  assert [r['index'] for r in label_issues.find(labels2, probs2)] == [8, 3]


def test_injected_flips_are_found_on_confident_predictions():
  rng = np.random.default_rng(0)
  true = rng.integers(0, 4, 400)
  probs = np.full((400, 4), 0.05)
  probs[np.arange(400), true] = 0.85
  probs += rng.uniform(0, 0.05, probs.shape)
  probs /= probs.sum(1, keepdims=True)
  flipped = rng.choice(400, 40, replace=False)
  given = true.copy()
  given[flipped] = (true[flipped] + 1 + rng.integers(0, 3, 40)) % 4
  found = {r['index'] for r in label_issues.find(given, probs)}
  assert found == set(flipped.tolist())


def test_the_csv_and_grid_name_every_flagged_photo(tmp_path):
  labels = np.array([0, 0, 0, 1, 1, 1])
  probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.1, 0.9], [0.3, 0.7]])
  image_set = folder.ImageSet(images=np.zeros((6, 8, 8, 3), np.uint8), labels=labels,
                              paths=[f'{c}/{i}.png' for i, c in enumerate('aaabbb')],
                              class_names=['a', 'b'], root='/photos', report={})
  summary = label_issues.write(str(tmp_path), image_set, probs, ['a', 'b'],
                               folds=np.array([0, 1, 2, 0, 1, 2]))
  assert summary['count'] == 1 and summary['by_pair'] == {'a -> b': 1}
  rows = list(csv.DictReader(open(tmp_path / 'label_issues.csv')))
  assert rows == [dict(path='a/2.png', given='a', suggested='b', p_given='0.1000',
                       p_suggested='0.9000', margin='0.8000', threshold_suggested='0.8000',
                       fold='2')]
  assert_png(os.path.join(tmp_path, 'label_issues.png'))
