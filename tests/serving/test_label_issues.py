"""The label-issue finder: per-class thresholds, what each method flags and how it is ranked, its
files."""

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
  issues = label_issues.find(labels, probs, 'confident_joint')
  assert [r['index'] for r in issues] == [3]
  assert issues[0]['suggested'] == 1 and issues[0]['margin'] == pytest.approx(0.8)
  # A stronger mislabel ranks first.
  labels2 = np.append(labels, 1)
  probs2 = np.vstack([probs, [0.99, 0.01]])
  assert [r['index'] for r in label_issues.find(labels2, probs2, 'confident_joint')] == [8, 3]


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
  for method in label_issues.METHODS:
    found = {r['index'] for r in label_issues.find(given, probs, method)}
    assert found == set(flipped.tolist()), method


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


def _noisy_probabilities(seed: int, n: int = 600, k: int = 4, flip: float = 0.1):
  """Out-of-fold-like probabilities of a decent, imperfect model (about 90% accurate), and labels
  with a seeded `flip` share moved to another class; returns (given, probabilities, flipped)."""
  rng = np.random.default_rng(seed)
  true = rng.integers(0, k, n)
  probs = rng.dirichlet(np.ones(k), n) * 0.5
  probs[np.arange(n), true] += rng.uniform(0.2, 0.9, n)
  probs /= probs.sum(1, keepdims=True)
  flipped = rng.choice(n, int(flip * n), replace=False)
  given = true.copy()
  given[flipped] = (true[flipped] + 1 + rng.integers(0, k - 1, len(flipped))) % k
  return given, probs, set(flipped.tolist())


def test_prune_by_noise_rate_flags_the_estimated_count_of_each_pair_by_margin():
  labels = np.array([0] * 10 + [1] * 14)
  probs = np.array([[0.95, 0.05]] * 10 + [[0.1, 0.9]] * 8 + [[0.95, 0.05]] * 2
                   + [[0.62, 0.38], [0.60, 0.40], [0.58, 0.42], [0.56, 0.44]])
  # t0 = 0.95, t1 = 0.636: the labelled-1 row of the confident joint is [2, 8] (the four weak 0s
  # reach no threshold), calibrated to 14 photos: [2.8, 11.2], so 3 photos labelled 1 are flagged.
  np.testing.assert_allclose(label_issues.calibrated_joint(labels, probs), [[10, 0], [2.8, 11.2]])
  found = [r['index'] for r in label_issues.find(labels, probs)]
  assert found == [18, 19, 20]  # the two confident flips, then the largest margin of the weak
  assert [r['index'] for r in label_issues.find(labels, probs, 'confident_joint')] == [18, 19]
  assert [r['index'] for r in label_issues.find(labels, probs, 'predicted_neq_given')] == list(
      range(18, 24))


def test_every_method_flags_only_disagreements_and_they_nest_as_documented():
  given, probs, _ = _noisy_probabilities(seed=1)
  found = {m: {r['index'] for r in label_issues.find(given, probs, m)} for m in label_issues.METHODS}
  disagree = set(np.flatnonzero(probs.argmax(1) != given).tolist())
  assert found['predicted_neq_given'] == disagree
  assert found['prune_by_noise_rate'] <= disagree
  for r in label_issues.find(given, probs):
    assert r['suggested'] == probs[r['index']].argmax() != r['given'] and r['margin'] > 0
  joint = label_issues.calibrated_joint(given, probs)
  assert len(found['prune_by_noise_rate']) <= np.round(joint - np.diag(np.diag(joint))).sum()
  with pytest.raises(ValueError, match='unknown label-issue method'):
    label_issues.find(given, probs, 'cleanlab')


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_prune_by_noise_rate_trades_some_precision_for_recall(seed):
  """Flips the confident joint misses (the true class below its threshold) are still counted by
  the calibrated joint, so the default finds more of them at a precision well above 50%."""
  given, probs, flipped = _noisy_probabilities(seed)

  def precision_recall(method):
    found = {r['index'] for r in label_issues.find(given, probs, method)}
    return len(found & flipped) / len(found), len(found & flipped) / len(flipped)

  p_prune, r_prune = precision_recall('prune_by_noise_rate')
  p_joint, r_joint = precision_recall('confident_joint')
  assert r_prune > r_joint + 0.05 and r_prune >= 0.75 and p_prune >= 0.5, (p_prune, r_prune, r_joint)
  assert p_joint >= p_prune


def test_grid_titles_name_the_file_cut_in_the_middle_when_long():
  assert label_issues.short_name('a/b/rock_12.jpg') == 'rock_12.jpg'
  long = 'istockphoto-476416199-612x612_basalt_sample.jpeg'
  short = label_issues.short_name('x/' + long)
  assert len(short) == 24 and short.startswith('istockphoto-') and short.endswith('e.jpeg')
