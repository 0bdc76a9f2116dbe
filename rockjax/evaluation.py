"""`--mode=eval`: the best checkpoint on the saved validation split (or any folder), in full detail.

Writes `<workdir>/eval/report.json` (accuracy; per-class precision, recall, F1, support; the confusion
matrix), `confusion_matrix.png` (counts and row-normalised) and `most_confident_errors.png`.
"""

from __future__ import annotations

import os

import numpy as np
from absl import logging

from rockjax import data, fileio, folder, inference, plots


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
      macro_f1=float(f1[present].mean()) if present.any() else 0.0,
      per_class=per_class,
      confusion_matrix=matrix.tolist(),
      class_names=list(class_names))


def format_report(report: dict) -> str:
  width = max(12, max(len(n) for n in report['class_names']) + 2)
  lines = [f'accuracy {100 * report["accuracy"]:.2f}% on {report["num_examples"]} images',
           f'{"class":<{width}}{"precision":>10}{"recall":>10}{"f1":>10}{"support":>10}']
  for name, m in report['per_class'].items():
    lines.append(f'{name:<{width}}{m["precision"]:>10.3f}{m["recall"]:>10.3f}{m["f1"]:>10.3f}'
                 f'{m["support"]:>10d}')
  lines.append(f'{"macro avg":<{width}}{report["macro_precision"]:>10.3f}'
               f'{report["macro_recall"]:>10.3f}{report["macro_f1"]:>10.3f}'
               f'{report["num_examples"]:>10d}')
  return '\n'.join(lines)


def most_confident_errors(image_set: folder.ImageSet, probabilities: np.ndarray, count: int):
  """Indices of the wrong predictions with the highest predicted probability, highest first."""
  predictions = probabilities.argmax(-1)
  wrong = np.flatnonzero(predictions != image_set.labels)
  confidence = probabilities[wrong, predictions[wrong]]
  return wrong[np.argsort(-confidence, kind='stable')][:count]


def error_grid(image_set: folder.ImageSet, probabilities: np.ndarray, indices, class_names,
               path: str, per_row: int = 8) -> str | None:
  if len(indices) == 0:
    return None
  cells, titles = [], []
  for i in indices:
    p = probabilities[i]
    cells.append(image_set.images[i])
    titles.append(f'true {class_names[image_set.labels[i]]}\n'
                  f'pred {class_names[p.argmax()]} {100 * p.max():.0f}%')
  rows = [cells[k:k + per_row] for k in range(0, len(cells), per_row)]
  title_rows = [titles[k:k + per_row] for k in range(0, len(titles), per_row)]
  return plots.image_grid(rows, [''] * len(rows), path, titles=title_rows, cell_inches=1.4)


def evaluation_set(predictor: inference.Predictor, workdir: str, eval_dir: str) -> folder.ImageSet:
  """The folder `eval_dir` (read with the run's preprocessing), or the run's saved val split."""
  if eval_dir:
    return folder.read_folder(os.path.abspath(os.path.expanduser(eval_dir)),
                              predictor.read_options, data.cache_dir(predictor.config.data),
                              class_names=predictor.class_names)
  if not os.path.exists(os.path.join(workdir, 'split.json')):
    raise folder.DataError(f'{workdir!r} has no split.json; pass --config.eval.dir=FOLDER')
  return data.load_dataset(predictor.config, workdir, write=False).val


def evaluate_workdir(workdir: str, eval_config) -> dict:
  predictor = inference.load_predictor(workdir)
  if eval_config.test_time_flip != 'run':
    predictor = predictor.with_test_time_flip(eval_config.test_time_flip == 'on')
  image_set = evaluation_set(predictor, workdir, eval_config.dir)
  if len(image_set) == 0:
    raise folder.DataError('no images to evaluate')
  probabilities = predictor.probabilities(image_set.images, eval_config.batch_size)
  report = classification_report(image_set.labels, probabilities, predictor.class_names)
  report.update(workdir=os.path.abspath(workdir), checkpoint_epoch=predictor.epoch,
                data=eval_config.dir or 'saved validation split',
                test_time_flip=bool(predictor.config.test_time_flip))
  out = os.path.join(workdir, 'eval')
  os.makedirs(out, exist_ok=True)
  wrong = most_confident_errors(image_set, probabilities, eval_config.num_errors_shown)
  report['most_confident_errors'] = [
      dict(path=image_set.paths[i], true=predictor.class_names[image_set.labels[i]],
           predicted=predictor.class_names[probabilities[i].argmax()],
           probability=float(probabilities[i].max())) for i in wrong]
  fileio.write_json(os.path.join(out, 'report.json'), report)
  plots.confusion_matrix(np.asarray(report['confusion_matrix']), predictor.class_names,
                         os.path.join(out, 'confusion_matrix.png'))
  error_grid(image_set, probabilities, wrong, predictor.class_names,
             os.path.join(out, 'most_confident_errors.png'))
  logging.info('Evaluated the best checkpoint (epoch %d) on %s%s: accuracy %.2f%% on %d images.',
               predictor.epoch, report['data'],
               ' with test-time flips' if report['test_time_flip'] else '',
               100 * report['accuracy'], report['num_examples'])
  return report
