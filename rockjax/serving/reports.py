"""The numbers of an evaluation: confusion matrix, per-class precision/recall/F1, and their text."""

from __future__ import annotations

import numpy as np


def confusion(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
  return matrix


def classification_report(labels: np.ndarray, probabilities: np.ndarray,
                          class_names: list[str]) -> dict:
  """Accuracy, per-class precision/recall/F1/support, macro averages and the confusion matrix."""
  labels = np.asarray(labels)
  predictions = np.argmax(probabilities, axis=-1)
  matrix = confusion(labels, predictions, len(class_names))
  true_pos = np.diag(matrix).astype(np.float64)
  support = matrix.sum(1)
  predicted = matrix.sum(0)
  precision = np.divide(true_pos, predicted, out=np.zeros_like(true_pos), where=predicted > 0)
  recall = np.divide(true_pos, support, out=np.zeros_like(true_pos), where=support > 0)
  denom = precision + recall
  f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(true_pos), where=denom > 0)
  per_class = {name: dict(precision=float(precision[i]), recall=float(recall[i]),
                          f1=float(f1[i]), support=int(support[i]))
               for i, name in enumerate(class_names)}
  present = support > 0
  return dict(
      accuracy=float(true_pos.sum() / max(len(labels), 1)),
      num_examples=int(len(labels)),
      macro_precision=float(precision[present].mean()) if present.any() else 0.0,
      macro_recall=float(recall[present].mean()) if present.any() else 0.0,
      # the mean of the per-class recalls: every class counts the same, however many photos it has
      balanced_accuracy=float(recall[present].mean()) if present.any() else 0.0,
      macro_f1=float(f1[present].mean()) if present.any() else 0.0,
      per_class=per_class,
      confusion_matrix=matrix.tolist(),
      class_names=list(class_names))


def format_report(report: dict) -> str:
  width = max(12, max(len(n) for n in report['class_names']) + 2)
  test = report.get('split') == 'test'
  lines = [f'accuracy {100 * report["accuracy"]:.2f}% on {report["num_examples"]} images'
           + (' of the TEST split (held out of training and of every choice)' if test else '')
           + (f'; balanced accuracy (mean per-class recall) '
              f'{100 * report["balanced_accuracy"]:.2f}%' if 'balanced_accuracy' in report else ''),
           f'{"class":<{width}}{"precision":>10}{"recall":>10}{"f1":>10}{"support":>10}']
  for name, m in report['per_class'].items():
    lines.append(f'{name:<{width}}{m["precision"]:>10.3f}{m["recall"]:>10.3f}{m["f1"]:>10.3f}'
                 f'{m["support"]:>10d}')
  lines.append(f'{"macro avg":<{width}}{report["macro_precision"]:>10.3f}'
               f'{report["macro_recall"]:>10.3f}{report["macro_f1"]:>10.3f}'
               f'{report["num_examples"]:>10d}')
  if 'folds' in report:  # a k-fold workdir: pooled out of fold, or the folds' ensemble on test
    how = 'averaged (ensemble)' if test else 'pooled out of fold'
    lines.append(f'{len(report["folds"])} folds {how}; per fold '
                 f'{100 * report["mean_fold_accuracy"]:.2f}% +- '
                 f'{100 * report["std_fold_accuracy"]:.2f}%'
                 + (f'; skipped (no checkpoint yet): {", ".join(report["folds_skipped"])}'
                    if report['folds_skipped'] else ''))
  return '\n'.join(lines)
