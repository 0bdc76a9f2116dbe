"""Photos whose label is probably wrong, from out-of-fold probabilities (confident learning).

After a k-fold run, every photo has class probabilities from the one model that never trained on
it. For each class j, the threshold t_j is the mean probability of j over the photos labelled j
(how confident the models are, on average, about a photo that really is a j). A photo labelled y
counts as a confident j when p_j >= t_j and j is the most probable of the classes that reach their
thresholds; counting these for every (y, j) gives the "confident joint" C (Northcutt et al., 2021).
`eval.label_issues_method` picks how photos are flagged from it:

- `prune_by_noise_rate` (the default, as in cleanlab): the joint is calibrated so that each row
  sums to its class's photo count, and its off-diagonal entry (y, j) estimates how many photos
  labelled y are really j's; that many photos labelled y are flagged, those with the largest
  p_j - p_y, keeping only photos whose most probable class is not their label. Recall first.
- `confident_joint`: exactly the off-diagonal of C, every photo that is a confident j with j != y.
  Fewer flags, higher precision.
- `predicted_neq_given`: every photo whose most probable class is not its label (a baseline).

On 10% injected flips in the generated set (docs/ablations.md) the first found 85% of the flips at
79% precision, the second 76% at 88%, the third 93% at 67%. The flagged photos are ranked by the
margin p_suggested - p_given, the strongest evidence first.

`find(labels, probabilities, method)` returns the ranked issues; `write(...)` writes
`label_issues.csv` (one row per flagged photo: path, given and suggested class, the evidence) and
`label_issues.png` (the top ones, for a person to review). A path list for `data.exclude` is the
csv's first column.
"""

from __future__ import annotations

import os

import numpy as np

from rockjax import fileio

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


METHODS = ('prune_by_noise_rate', 'confident_joint', 'predicted_neq_given')


def confident_classes(probabilities: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
  """For each example, the most probable class among those reaching their thresholds (-1: none)."""
  confident = probabilities >= thresholds[None, :]
  return np.where(confident.any(1), np.where(confident, probabilities, -1.0).argmax(1), -1)


def calibrated_joint(labels: np.ndarray, probabilities: np.ndarray,
                     thresholds: np.ndarray | None = None) -> np.ndarray:
  """The confident joint, each row rescaled to sum to the number of examples with that label:
  entry (y, j) estimates how many examples labelled y really are j's."""
  if thresholds is None:
    thresholds = class_thresholds(labels, probabilities)
  num_classes = probabilities.shape[1]
  joint = np.zeros((num_classes, num_classes))
  sure = confident_classes(probabilities, thresholds)
  np.add.at(joint, (labels[sure >= 0], sure[sure >= 0]), 1)
  counts = np.bincount(labels, minlength=num_classes)
  return joint / np.maximum(joint.sum(1, keepdims=True), 1) * counts[:, None]


def _prune_by_noise_rate(labels: np.ndarray, probabilities: np.ndarray,
                         thresholds: np.ndarray) -> np.ndarray:
  joint = calibrated_joint(labels, probabilities, thresholds)
  flagged = np.zeros(len(labels), bool)
  for y in range(joint.shape[0]):
    mine = np.flatnonzero(labels == y)
    for j in range(joint.shape[0]):
      count = int(np.round(joint[y, j]))
      if j != y and count:
        margin = probabilities[mine, j] - probabilities[mine, y]
        flagged[mine[np.argsort(-margin, kind='stable')[:count]]] = True
  return flagged & (probabilities.argmax(1) != labels)


def find(labels, probabilities, method: str = 'prune_by_noise_rate') -> list[dict]:
  """Ranked label issues (`method`: one of METHODS): dicts with index, given, suggested (class
  indices), p_given, p_suggested, margin and threshold_suggested, the largest margin first."""
  labels = np.asarray(labels, np.int64)
  probabilities = np.asarray(probabilities, np.float64)
  thresholds = class_thresholds(labels, probabilities)
  if method == 'confident_joint':
    suggested = confident_classes(probabilities, thresholds)
    flagged = (suggested >= 0) & (suggested != labels)
  elif method in ('prune_by_noise_rate', 'predicted_neq_given'):
    suggested = probabilities.argmax(1)
    flagged = (_prune_by_noise_rate(labels, probabilities, thresholds)
               if method == 'prune_by_noise_rate' else suggested != labels)
  else:
    raise ValueError(f'unknown label-issue method {method!r}; one of {METHODS}')
  rows = []
  for i in np.flatnonzero(flagged):
    p_given, p_suggested = probabilities[i, labels[i]], probabilities[i, suggested[i]]
    rows.append(dict(index=int(i), given=int(labels[i]), suggested=int(suggested[i]),
                     p_given=float(p_given), p_suggested=float(p_suggested),
                     margin=float(p_suggested - p_given),
                     threshold_suggested=float(thresholds[suggested[i]])))
  rows.sort(key=lambda r: (-r['margin'], r['index']))
  return rows


def summary(issues: list[dict], class_names: list[str], num_examples: int,
            method: str = 'prune_by_noise_rate') -> dict:
  """How many photos were flagged, and the most frequent (given -> suggested) pairs."""
  pairs: dict[str, int] = {}
  for r in issues:
    key = f'{class_names[r["given"]]} -> {class_names[r["suggested"]]}'
    pairs[key] = pairs.get(key, 0) + 1
  return dict(count=len(issues), fraction=len(issues) / max(num_examples, 1), method=method,
              by_pair=dict(sorted(pairs.items(), key=lambda kv: -kv[1])))


def short_name(path: str, width: int = 24) -> str:
  """A file's name for a figure's title, cut in the middle when long (the start and the extension
  find it in label_issues.csv)."""
  name = os.path.basename(path)
  return name if len(name) <= width else name[:width - 9] + '...' + name[-6:]


def write(out: str, image_set, probabilities: np.ndarray, class_names: list[str],
          folds: np.ndarray | None = None, num_shown: int = 48,
          method: str = 'prune_by_noise_rate') -> dict:
  """label_issues.csv and label_issues.png in `out`; returns the summary for the eval report."""
  issues = find(image_set.labels, probabilities, method)
  write_issues(out, 'label_issues', image_set, issues, class_names, folds, num_shown)
  return summary(issues, class_names, len(image_set), method)


def write_issues(out: str, stem: str, image_set, issues: list[dict], class_names: list[str],
                 folds: np.ndarray | None = None, num_shown: int = 48) -> None:
  """`<stem>.csv` (every issue, in rank order) and `<stem>.png` (the first `num_shown`, each with
  its file name, given and suggested class) in `out`."""
  fileio.write_csv(os.path.join(out, f'{stem}.csv'), COLUMNS, (
      [image_set.paths[r['index']], class_names[r['given']], class_names[r['suggested']],
       f'{r["p_given"]:.4f}', f'{r["p_suggested"]:.4f}', f'{r["margin"]:.4f}',
       f'{r["threshold_suggested"]:.4f}', '' if folds is None else int(folds[r['index']])]
      for r in issues))
  shown = issues[:num_shown]
  if shown:
    from rockjax import plots  # matplotlib only when a grid is drawn
    per_row = 8
    cells = [image_set.images[r['index']] for r in shown]
    titles = [f'{short_name(image_set.paths[r["index"]])}\n'  # the file, to find it
              f'{class_names[r["given"]]} -> {class_names[r["suggested"]]} '
              f'{100 * r["p_suggested"]:.0f}%' for r in shown]  # given -> suggested
    plots.image_grid([cells[k:k + per_row] for k in range(0, len(cells), per_row)],
                     [f'#{k + 1}' for k in range(0, len(cells), per_row)],
                     os.path.join(out, f'{stem}.png'), cell_inches=2.0,
                     titles=[titles[k:k + per_row] for k in range(0, len(titles), per_row)])
