"""Photos whose label is probably wrong, from out-of-fold probabilities (confident learning).

After a k-fold run, every photo has class probabilities from the one model that never trained on
it. For each class j, the threshold t_j is the mean probability of j over the photos labelled j
(how confident the models are, on average, about a photo that really is a j). A photo labelled y
is flagged when some other class j reaches its own threshold (p_j >= t_j) and is the most probable
of the classes that do: it is then counted as a confident j among the y's (the off-diagonal of
the "confident joint", Northcutt et al., 2021). The flagged photos are ranked by the margin
p_suggested - p_given, the strongest evidence first.

`find(labels, probabilities)` returns the ranked issues; `write(...)` writes `label_issues.csv`
(one row per flagged photo: path, given and suggested class, the evidence) and `label_issues.png`
(the top ones, for a person to review). A path list for `data.exclude` is the csv's first column.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from rockjax import plots

COLUMNS = ('path', 'given', 'suggested', 'p_given', 'p_suggested', 'margin',
           'threshold_suggested', 'fold')


def class_thresholds(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
  """t_j: the mean probability of class j over the examples labelled j (inf for a class with no
  example, which can then never be suggested)."""
  num_classes = probabilities.shape[1]
  thresholds = np.full(num_classes, np.inf)
  for j in range(num_classes):
    mine = labels == j
    if mine.any():
      thresholds[j] = probabilities[mine, j].mean()
  return thresholds


def find(labels, probabilities) -> list[dict]:
  """Ranked label issues: dicts with index, given, suggested (class indices), p_given,
  p_suggested, margin and threshold_suggested, the largest margin first."""
  labels = np.asarray(labels, np.int64)
  probabilities = np.asarray(probabilities, np.float64)
  thresholds = class_thresholds(labels, probabilities)
  confident = probabilities >= thresholds[None, :]
  masked = np.where(confident, probabilities, -1.0)
  suggested = masked.argmax(1)
  flagged = np.flatnonzero(confident.any(1) & (suggested != labels))
  rows = []
  for i in flagged:
    p_given, p_suggested = probabilities[i, labels[i]], probabilities[i, suggested[i]]
    rows.append(dict(index=int(i), given=int(labels[i]), suggested=int(suggested[i]),
                     p_given=float(p_given), p_suggested=float(p_suggested),
                     margin=float(p_suggested - p_given),
                     threshold_suggested=float(thresholds[suggested[i]])))
  rows.sort(key=lambda r: (-r['margin'], r['index']))
  return rows


def summary(issues: list[dict], class_names: list[str], num_examples: int) -> dict:
  """How many photos were flagged, and the most frequent (given -> suggested) pairs."""
  pairs: dict[str, int] = {}
  for r in issues:
    key = f'{class_names[r["given"]]} -> {class_names[r["suggested"]]}'
    pairs[key] = pairs.get(key, 0) + 1
  return dict(count=len(issues), fraction=len(issues) / max(num_examples, 1),
              by_pair=dict(sorted(pairs.items(), key=lambda kv: -kv[1])))


def write(out: str, image_set, probabilities: np.ndarray, class_names: list[str],
          folds: np.ndarray | None = None, num_shown: int = 48) -> dict:
  """label_issues.csv and label_issues.png in `out`; returns the summary for the eval report."""
  issues = find(image_set.labels, probabilities)
  with open(os.path.join(out, 'label_issues.csv'), 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(COLUMNS)
    for r in issues:
      i = r['index']
      writer.writerow([image_set.paths[i], class_names[r['given']], class_names[r['suggested']],
                       f'{r["p_given"]:.4f}', f'{r["p_suggested"]:.4f}', f'{r["margin"]:.4f}',
                       f'{r["threshold_suggested"]:.4f}',
                       '' if folds is None else int(folds[i])])
  shown = issues[:num_shown]
  if shown:
    per_row = 8
    cells = [image_set.images[r['index']] for r in shown]
    titles = [f'{class_names[r["given"]]} -> {class_names[r["suggested"]]} '
              f'{100 * r["p_suggested"]:.0f}%' for r in shown]  # given -> suggested
    plots.image_grid([cells[k:k + per_row] for k in range(0, len(cells), per_row)],
                     [f'#{k + 1}' for k in range(0, len(cells), per_row)],
                     os.path.join(out, 'label_issues.png'), cell_inches=1.8,
                     titles=[titles[k:k + per_row] for k in range(0, len(titles), per_row)])
  return summary(issues, class_names, len(image_set))
