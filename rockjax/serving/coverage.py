""""Not sure" as an answer: how accuracy grows as the least confident photos are left unanswered.

`--mode=eval` reports, for each confidence threshold, the share of photos answered (coverage) and
the accuracy on them, the thresholds that keep 95%, 90% and 80% of the photos, and draws
`eval/accuracy_coverage.png`. `--config.predict.min_confidence=T` then answers `uncertain` for
every photo whose top (calibrated) probability is under T: a threshold chosen from this curve on
the validation photos.
"""

from __future__ import annotations

import os

import numpy as np

UNCERTAIN = 'uncertain'  # predictions.csv's answer for a photo under predict.min_confidence
COVERAGES = (0.95, 0.9, 0.8)  # reported: the threshold that keeps this share of the photos


def curve(probabilities: np.ndarray, labels: np.ndarray) -> dict:
  """Coverage and accuracy when answering only the k most confident photos, for every k; the
  threshold of each point is the k-th highest confidence."""
  confidence = np.asarray(probabilities).max(axis=1)
  correct = np.asarray(probabilities).argmax(axis=1) == np.asarray(labels)
  order = np.argsort(-confidence, kind='stable')
  answered = np.arange(1, len(order) + 1)
  return dict(threshold=confidence[order].tolist(),
              coverage=(answered / max(len(order), 1)).tolist(),
              accuracy=(np.cumsum(correct[order]) / answered).tolist())


def _threshold(descending: np.ndarray, coverage: float) -> float:
  k = max(int(np.ceil(coverage * len(descending))), 1)
  return float(descending[k - 1])


def threshold_for(probabilities: np.ndarray, coverage: float) -> float:
  """The highest confidence threshold that still answers at least `coverage` of the photos."""
  return _threshold(np.sort(np.asarray(probabilities).max(axis=1))[::-1], coverage)


def summary(probabilities: np.ndarray, labels: np.ndarray) -> dict:
  """The eval report's entry: per kept share (95/90/80%), the threshold, the accuracy on what is
  answered (every photo at or over the threshold, ties included); and the whole curve (for the
  figure). One sort serves all of it."""
  c = curve(probabilities, labels)
  descending = np.asarray(c['threshold'])
  rows = []
  for share in COVERAGES:
    t = _threshold(descending, share)
    answered = int(np.searchsorted(-descending, -t, side='right'))  # confidence >= t
    rows.append(dict(coverage=c['coverage'][answered - 1], threshold=t,
                     accuracy=c['accuracy'][answered - 1]))
  return dict(at=rows, all_answered_accuracy=c['accuracy'][-1] if c['accuracy'] else 0.0,
              curve=c)


def answers(probabilities: np.ndarray, class_names, min_confidence: float) -> list[str]:
  """Each photo's answer: its top class, or UNCERTAIN when the top probability is under
  min_confidence (0 answers everything)."""
  probabilities = np.asarray(probabilities)
  top = probabilities.argmax(axis=1)
  sure = probabilities.max(axis=1) >= min_confidence
  return [class_names[int(i)] if ok else UNCERTAIN for i, ok in zip(top, sure)]


def write(out: str, probabilities: np.ndarray, labels: np.ndarray, temperature: float | None,
          title: str) -> dict:
  """The report's `coverage` entry, on the probabilities predict gives (temperature-scaled when a
  temperature was fitted), and `accuracy_coverage.png` in `out`."""
  from rockjax import plots
  from rockjax.serving import calibration
  scaled = calibration.scale(probabilities, temperature) if temperature else probabilities
  entry = summary(scaled, labels)
  plots.accuracy_coverage(entry.pop('curve'), entry['at'],
                          os.path.join(out, 'accuracy_coverage.png'), title)
  entry['probabilities'] = (f'temperature-scaled (T={temperature:.3f}), as predict gives them'
                            if temperature else 'as scored (no temperature fitted)')
  return entry
