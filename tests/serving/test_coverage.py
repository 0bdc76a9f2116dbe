""""Not sure" as an answer: the accuracy-coverage curve, its thresholds, and predict's uncertain
answers under predict.min_confidence."""

import csv
import json
import os

import numpy as np
import pytest

from rockjax.serving import coverage, predict
from helpers import assert_png, write_image

# Four photos, most confident first: right, right, wrong, right.
PROBS = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
LABELS = np.array([0, 1, 1, 1])


def test_the_curve_answers_the_most_confident_photos_first():
  c = coverage.curve(PROBS, LABELS)
  assert c['threshold'] == [0.9, 0.8, 0.7, 0.6]
  assert c['coverage'] == [0.25, 0.5, 0.75, 1.0]
  np.testing.assert_allclose(c['accuracy'], [1.0, 1.0, 2 / 3, 0.75])


def test_thresholds_keep_at_least_the_asked_share():
  assert coverage.threshold_for(PROBS, 1.0) == 0.6
  assert coverage.threshold_for(PROBS, 0.75) == 0.7
  assert coverage.threshold_for(PROBS, 0.5) == 0.8
  assert coverage.threshold_for(PROBS, 0.3) == 0.8  # 2 of 4 answered: the least that covers 30%
  s = coverage.summary(PROBS, LABELS)
  assert s['all_answered_accuracy'] == 0.75
  assert [r['coverage'] for r in s['at']] == [1.0, 1.0, 1.0]  # 95/90/80% of 4 photos: all 4


def test_each_kept_share_counts_every_photo_at_its_threshold_ties_included():
  rng = np.random.default_rng(0)
  for trial in range(20):
    n = int(rng.integers(1, 40))
    # few distinct confidences, so that thresholds fall on ties
    top = rng.choice([0.5, 0.6, 0.6, 0.8, 0.9], n)
    probs = np.stack([top, 1 - top], axis=1)
    labels = rng.integers(0, 2, n)
    s = coverage.summary(probs, labels)
    for share, row in zip(coverage.COVERAGES, s['at']):
      t = coverage.threshold_for(probs, share)
      kept = top >= t
      assert row['threshold'] == t and row['coverage'] == pytest.approx(kept.mean())
      assert row['coverage'] >= share
      assert row['accuracy'] == pytest.approx(np.mean((probs.argmax(1) == labels)[kept]))
    assert s['all_answered_accuracy'] == pytest.approx(np.mean(probs.argmax(1) == labels))


def test_answers_are_uncertain_under_the_threshold():
  assert coverage.answers(PROBS, ['basalt', 'granite'], 0.0) == [
      'basalt', 'granite', 'basalt', 'granite']
  assert coverage.answers(PROBS, ['basalt', 'granite'], 0.75) == [
      'basalt', 'granite', 'uncertain', 'uncertain']


def test_eval_reports_coverage_and_draws_it(run, tmp_path):
  from rockjax.serving import evaluation
  config, workdir, _ = run
  report = evaluation.evaluate_workdir(workdir, _eval_config(config, tmp_path))
  cov = report['coverage']
  assert all(r['coverage'] >= share for r, share in zip(cov['at'], (0.95, 0.9, 0.8)))
  assert [r['threshold'] for r in cov['at']] == sorted(r['threshold'] for r in cov['at'])
  assert cov['probabilities'].startswith('temperature-scaled')  # the val split: T is fitted
  assert_png(str(tmp_path / 'eval' / 'accuracy_coverage.png'))
  with open(tmp_path / 'eval' / 'report.json') as f:
    assert json.load(f)['coverage']['at'] == cov['at']


def _eval_config(config, tmp_path):
  e = config.eval.copy_and_resolve_references()
  e.output_dir = str(tmp_path / 'eval')
  return e


def test_predict_answers_uncertain_below_min_confidence(run, tmp_path):
  config, workdir, _ = run
  photos = [write_image(str(tmp_path / 'in' / f'p{i}.png'), seed=i) for i in range(6)]
  p = config.predict.copy_and_resolve_references()
  p.output_dir, p.latency_runs = str(tmp_path / 'out'), 0
  summary = predict.predict_workdir(workdir, [str(tmp_path / 'in')], p)
  with open(tmp_path / 'out' / 'predictions.csv') as f:
    rows = list(csv.DictReader(f))
  assert summary['num_uncertain'] == 0 and all(r['answer'] == r['predicted_class'] for r in rows)
  tops = sorted(float(r['probability']) for r in rows)
  p.min_confidence = (tops[2] + tops[3]) / 2  # between the 3rd and 4th most uncertain photos
  summary = predict.predict_workdir(workdir, photos, p)
  with open(tmp_path / 'out' / 'predictions.csv') as f:
    rows = list(csv.DictReader(f))
  uncertain = [r for r in rows if r['answer'] == 'uncertain']
  assert summary['num_uncertain'] == len(uncertain) == 3
  assert all(float(r['probability']) < p.min_confidence for r in uncertain)
  assert all(r['answer'] == r['predicted_class'] for r in rows if r not in uncertain)


def test_min_confidence_must_be_a_probability():
  from rockjax import schema
  from rockjax.errors import ConfigError
  c = schema.base_config()
  c.predict.min_confidence = 1.0
  with pytest.raises(ConfigError, match='predict.min_confidence'):
    schema.validate(c)


def test_the_unseen_check_rejects_what_falls_under_the_kept_share_threshold(run, tmp_path):
  """scripts/unseen_check.py on the tiny run, with flat grey and noise photos as the classes it
  never saw: the rejected count is exactly the photos under the threshold that keeps 95% of the
  run's own validation photos."""
  import unseen_check
  import rockjax
  config, workdir, _ = run
  rng = np.random.default_rng(0)
  for i in range(4):
    write_image(str(tmp_path / 'unseen' / 'grey' / f'{i}.png'),
                np.full((20, 20, 3), 40 * i, np.uint8))
    write_image(str(tmp_path / 'unseen' / 'noise' / f'{i}.png'),
                rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
  paths = unseen_check.unseen_photos(str(tmp_path / 'unseen'), per_class=3)
  assert len(paths) == 6
  result = unseen_check.check(workdir, paths, 0.95)
  confidence = rockjax.load(workdir).predict(paths).confidence
  assert result['unseen_rejected'] == int((confidence < result['threshold']).sum())
  assert result['own_photos_answered'] >= 0.95
