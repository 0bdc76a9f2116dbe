"""The figures of what a run got wrong: its most confident errors, as photos and with the map of
where the network looked for its (wrong) answer (saliency.py)."""

from __future__ import annotations

import numpy as np

from rockjax import plots
from rockjax.data import folder
from rockjax.serving import label_issues, saliency


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
    titles.append(f'{label_issues.short_name(image_set.paths[i])}\n'
                  f'true {class_names[image_set.labels[i]]}\n'
                  f'pred {class_names[p.argmax()]} {100 * p.max():.0f}%')
  rows = [cells[k:k + per_row] for k in range(0, len(cells), per_row)]
  title_rows = [titles[k:k + per_row] for k in range(0, len(titles), per_row)]
  return plots.image_grid(rows, [''] * len(rows), path, titles=title_rows, cell_inches=1.4)


def explain_errors(predictor, image_set, probabilities: np.ndarray, indices, class_names,
                   path: str, per_row: int = 6) -> str | None:
  """eval's most confident errors, each photo beside its map for the (wrong) predicted class."""
  indices = np.asarray(indices, np.int64)
  if len(indices) == 0:
    return None
  images = image_set.images[indices]
  cams = saliency.class_maps(predictor, images, probabilities[indices].argmax(axis=1))
  cells, titles = [], []
  for i, image, cam in zip(indices, images, cams):
    p = probabilities[i]
    cells += [image, saliency.overlay(image, cam)]
    titles += [f'{label_issues.short_name(image_set.paths[i])}\n'
               f'true {class_names[image_set.labels[i]]}',
               f'looked at, for\n{class_names[p.argmax()]} {100 * p.max():.0f}%']
  step = 2 * per_row
  return plots.image_grid([cells[k:k + step] for k in range(0, len(cells), step)],
                          [''] * (-(-len(cells) // step)), path,
                          titles=[titles[k:k + step] for k in range(0, len(titles), step)],
                          cell_inches=1.8)
