"""How far to trust a probability: expected calibration error, the reliability diagram, and one
temperature fitted on the validation split.

`--mode=eval` on the run's validation split measures the ECE (15 equal-width confidence bins: the
gap between confidence and accuracy, weighted by the bin's share of photos), draws
`reliability.png`, and fits the temperature T that minimises the validation log-loss of
softmax(log p / T). It writes T into `<workdir>/calibration.json`; `--mode=predict`, `rockjax.load`
and `--mode=export` then report calibrated probabilities (top-1 is unchanged by T), while `eval`
itself keeps scoring the raw ones, so that refitting starts from the same place.
"""

from __future__ import annotations

import os

import numpy as np
from absl import logging

from rockjax import fileio

FILE = 'calibration.json'
BINS = 15


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict:
  """Per confidence bin: its photos, their mean confidence and their accuracy; and the ECE."""
  confidence = probabilities.max(axis=1)
  correct = probabilities.argmax(axis=1) == np.asarray(labels)
  edges = np.linspace(0.0, 1.0, bins + 1)
  which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
  counts = np.bincount(which, minlength=bins)
  conf = np.bincount(which, confidence, bins) / np.maximum(counts, 1)
  acc = np.bincount(which, correct, bins) / np.maximum(counts, 1)
  ece = float(np.sum(counts * np.abs(acc - conf)) / max(len(labels), 1))
  return dict(ece=ece, edges=edges.tolist(), counts=counts.tolist(), confidence=conf.tolist(),
              accuracy=acc.tolist())


def scale(probabilities: np.ndarray, temperature: float) -> np.ndarray:
  """softmax(log p / T): the same ranking, sharper (T < 1) or softer (T > 1)."""
  logits = np.log(np.clip(probabilities, 1e-30, 1.0)) / temperature
  logits -= logits.max(axis=1, keepdims=True)
  e = np.exp(logits)
  return e / e.sum(axis=1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
  """The T in [0.05, 20] that minimises the mean negative log-likelihood of the labels."""
  from scipy import optimize
  labels = np.asarray(labels)

  def nll(log_t):
    p = scale(probabilities, float(np.exp(log_t)))[np.arange(len(labels)), labels]
    return -np.mean(np.log(np.clip(p, 1e-30, 1.0)))
  result = optimize.minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method='bounded')
  return float(np.exp(result.x))


def read_temperature(workdir: str, epoch: int) -> float | None:
  """The temperature --mode=eval fitted for the checkpoint of `epoch`; None when there is none, or
  when it was fitted for another checkpoint (the run trained on since: eval again)."""
  import json
  path = os.path.join(workdir, FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    saved = json.load(f)
  if saved.get('checkpoint_epoch') != epoch:
    logging.warning('%s was fitted for the checkpoint of epoch %s, not the one used now (epoch %d): '
                    'probabilities are not temperature-scaled; run --mode=eval to fit it again.',
                    path, saved.get('checkpoint_epoch'), epoch)
    return None
  return float(saved['temperature'])


def measure(labels, probabilities, fit: bool) -> dict:
  """The ECE and the reliability bins of these probabilities; with `fit` (the validation split),
  the temperature fitted there and the ECE after it."""
  rel = reliability(probabilities, labels)
  result = dict(ece=rel['ece'], bins=BINS, reliability=rel)
  if fit:
    t = fit_temperature(probabilities, labels)
    result.update(temperature=t,
                  ece_after_temperature=reliability(scale(probabilities, t), labels)['ece'])
  return result


def save(workdir: str, result: dict, epoch: int) -> None:
  """calibration.json in the run's workdir (predict and export read it); a workdir that cannot be
  written costs only the temperature, with a warning."""
  saved = dict(temperature=result['temperature'], fitted_on='the validation split, by --mode=eval',
               checkpoint_epoch=epoch, ece_before=result['ece'],
               ece_after=result['ece_after_temperature'])
  try:
    fileio.write_json(os.path.join(workdir, FILE), saved)
  except OSError as e:
    logging.warning('Could not save the fitted temperature into %s (%s); predict and export '
                    'will use uncalibrated probabilities.', workdir, e)
    return
  logging.info('Calibration: ECE %.1f points; temperature %.2f fitted on validation gives %.1f '
               '(predict and export use it).', 100 * result['ece'], result['temperature'],
               100 * result['ece_after_temperature'])
