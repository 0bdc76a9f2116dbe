"""serving/calibration.py: the ECE, the temperature fitted on validation, saved by --mode=eval and
used by predict, rockjax.load and export (never by eval itself); a stale one is ignored, said."""

import json
import shutil

import numpy as np
import pytest

import rockjax
from rockjax.serving import calibration, evaluation, export, predictor as predictors

from helpers import tiny_config


def test_the_ece_of_a_known_case_and_what_a_temperature_keeps():
  probabilities = np.tile([[0.9, 0.1]], (10, 1))  # 90% sure, right half the time
  labels = np.array([0, 1] * 5)
  rel = calibration.reliability(probabilities, labels)
  assert rel['ece'] == pytest.approx(0.4) and sum(rel['counts']) == 10
  scaled = calibration.scale(probabilities, 2.0)
  assert (scaled.argmax(1) == probabilities.argmax(1)).all()
  np.testing.assert_allclose(scaled.sum(1), 1.0)
  assert scaled[0, 0] == pytest.approx(3 / 4)  # 0.9^(1/2) / (0.9^(1/2) + 0.1^(1/2))


def test_the_fitted_temperature_softens_an_overconfident_model_and_keeps_a_calibrated_one():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(4000, 5)) * 2
  true_p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  labels = np.array([rng.choice(5, p=p) for p in true_p])  # labels drawn from true_p: calibrated
  assert calibration.fit_temperature(true_p, labels) == pytest.approx(1.0, abs=0.1)
  overconfident = calibration.scale(true_p, 0.5)  # sharper than the truth
  t = calibration.fit_temperature(overconfident, labels)
  assert t == pytest.approx(2.0, rel=0.15)
  assert (calibration.reliability(calibration.scale(overconfident, t), labels)['ece']
          < calibration.reliability(overconfident, labels)['ece'])


def test_eval_fits_it_and_predict_load_and_export_use_it(run, tmp_path, caplog):
  _, workdir, _ = run
  copy = tmp_path / 'run'
  shutil.copytree(workdir, copy)
  eval_config = tiny_config().eval
  eval_config.output_dir = str(tmp_path / 'eval')
  report = evaluation.evaluate_workdir(str(copy), eval_config)
  saved = json.loads((copy / calibration.FILE).read_text())
  t = saved['temperature']
  assert report['calibration']['temperature'] == t and 0.05 <= t <= 20
  assert saved['checkpoint_epoch'] == report['checkpoint_epoch']
  assert (tmp_path / 'eval' / 'reliability.png').stat().st_size > 0
  again = evaluation.evaluate_workdir(str(copy), eval_config)  # eval scores raw probabilities
  assert again['calibration']['temperature'] == pytest.approx(t)

  images = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
  raw = predictors.load_predictor(str(copy)).probabilities(images)
  calibrated = predictors.load_predictor(str(copy), calibrated=True)
  assert calibrated.temperature == t
  np.testing.assert_allclose(calibrated.probabilities(images), calibration.scale(raw, t),
                             atol=1e-5)
  np.testing.assert_allclose(rockjax.load(str(copy)).predict(images).probabilities,
                             calibration.scale(raw, t), atol=1e-5)
  serve, meta = export.load_saved_model(export.export_saved_model(str(copy),
                                                                  str(tmp_path / 'export')))
  assert meta['temperature'] == t
  np.testing.assert_allclose(serve(images), calibration.scale(raw, t), atol=1e-5)

  saved['checkpoint_epoch'] = -1  # fitted for another checkpoint: not used, and said
  (copy / calibration.FILE).write_text(json.dumps(saved))
  assert predictors.load_predictor(str(copy), calibrated=True).temperature == 1.0
  assert 'run --mode=eval to fit it again' in caplog.text
