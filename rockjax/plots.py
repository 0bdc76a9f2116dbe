"""Figures a user looks at: augmentation previews, training curves, confusion matrices, image grids.

Every function takes plain numpy data, writes one PNG atomically, and returns its path. Matplotlib runs
headless (Agg), so plots work in CI and over SSH.
"""

from __future__ import annotations

import os
import textwrap

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: str) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f'{path}.tmp.png'
  fig.savefig(tmp, dpi=100, bbox_inches='tight')
  plt.close(fig)
  os.replace(tmp, path)
  return path


def image_grid(rows: list[list[np.ndarray]], row_labels: list[str], path: str,
               col_labels: list[str] | None = None, cell_inches: float = 1.2,
               titles: list[list[str]] | None = None) -> str:
  """A grid of uint8 HWC images; one label per row, optional column labels and per-cell titles."""
  n_rows, n_cols = len(rows), max(len(r) for r in rows)
  fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell_inches * n_cols, cell_inches * n_rows),
                           squeeze=False)
  for i, row in enumerate(rows):
    for j in range(n_cols):
      ax = axes[i][j]
      ax.set_xticks([])
      ax.set_yticks([])
      if j < len(row):
        ax.imshow(row[j], interpolation='nearest')
        if titles and titles[i][j]:
          ax.set_title(titles[i][j], fontsize=6)
      else:
        ax.axis('off')
    axes[i][0].set_ylabel(row_labels[i], fontsize=7)
  if col_labels:
    for j, label in enumerate(col_labels):
      axes[0][j].set_title(label, fontsize=7)
  return _save(fig, path)


def augmentation_preview(originals: list[np.ndarray], class_names: list[str],
                         augmented: list[list[np.ndarray]], path: str, preset: str) -> str:
  """Row per image: the original, then augmented versions; rows labelled with the class."""
  rows = [[o] + a for o, a in zip(originals, augmented)]
  cols = ['original'] + [f'{preset} #{k + 1}' for k in range(len(augmented[0]))]
  return image_grid(rows, class_names, path, col_labels=cols)


def training_curves(records: list[dict], path: str, best_epoch: int | None = None,
                    best_accuracy: float | None = None) -> str:
  """Train and val loss and accuracy per epoch, the best epoch marked.

  Any epoch may be missing from `records` (a damaged or deleted metrics.jsonl): the best epoch's
  accuracy is `best_accuracy` (the loop state's) when given, else its record's, else only its line."""
  epochs = [r['epoch'] for r in records]
  fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
  ax_loss.plot(epochs, [r['train_loss'] for r in records], '.-', label='train')
  ax_loss.plot(epochs, [r['val_loss'] for r in records], '.-', label='val')
  ax_loss.set(xlabel='epoch', ylabel='loss', title='loss')
  ax_acc.plot(epochs, [100 * r['train_accuracy'] for r in records], '.-', label='train')
  ax_acc.plot(epochs, [100 * r['val_accuracy'] for r in records], '.-', label='val')
  ax_acc.set(xlabel='epoch', ylabel='accuracy (%)', title='accuracy')
  if best_epoch:
    if best_accuracy is None:
      best_accuracy = next((r['val_accuracy'] for r in records if r['epoch'] == best_epoch), None)
    for ax in (ax_loss, ax_acc):
      ax.axvline(best_epoch, color='grey', linestyle=':', linewidth=1,
                 label=None if best_accuracy is not None or ax is ax_loss else f'best @ {best_epoch}')
    if best_accuracy is not None:
      ax_acc.plot([best_epoch], [100 * best_accuracy], 'k*', markersize=10,
                  label=f'best {100 * best_accuracy:.1f}% @ {best_epoch}')
  for ax in (ax_loss, ax_acc):
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  return _save(fig, path)


def confusion_matrix(matrix: np.ndarray, class_names: list[str], path: str,
                     title: str = '') -> str:
  """Counts (left) and row-normalised recall (right); true class on rows; `title` above both."""
  matrix = np.asarray(matrix)
  rows = matrix.sum(1, keepdims=True)
  normalised = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
  k = len(class_names)
  side = max(4.0, 0.55 * k + 2)
  fig, axes = plt.subplots(1, 2, figsize=(2 * side + 2.5, side), layout='constrained')
  for ax, values, title, fmt in ((axes[0], matrix, 'counts', 'd'),
                                 (axes[1], normalised, 'row-normalised', '.2f')):
    im = ax.imshow(values, cmap='Blues', vmin=0)
    ax.set(xticks=range(k), yticks=range(k), xlabel='predicted', ylabel='true', title=title)
    ax.set_xticklabels(class_names, rotation=45, ha='right', fontsize=8)
    ax.set_yticklabels(class_names, fontsize=8)
    top = values.max() if values.size else 0
    for i in range(k):
      for j in range(k):
        ax.text(j, i, format(values[i, j], fmt), ha='center', va='center', fontsize=7,
                color='white' if top and values[i, j] > 0.6 * top else 'black')
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
  if title:
    fig.suptitle(title, fontsize=10)
  return _save(fig, path)


def reliability_diagram(rel: dict, path: str, title: str = '') -> str:
  """Accuracy against confidence per bin (bars; the diagonal is perfect calibration), and how many
  photos each bin holds."""
  edges = np.asarray(rel['edges'])
  centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
  counts = np.asarray(rel['counts'])
  fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=(3, 1), sharex=True,
                                 layout='constrained')
  shown = counts > 0
  ax.bar(centres[shown], np.asarray(rel['accuracy'])[shown], width=width * 0.9, label='accuracy')
  ax.plot([0, 1], [0, 1], 'k--', lw=1, label='perfect calibration')
  ax.set(ylabel='accuracy', xlim=(0, 1), ylim=(0, 1),
         title=title or f'ECE {100 * rel["ece"]:.1f} points')
  ax.legend(loc='upper left', fontsize=8)
  ax_n.bar(centres, counts, width=width * 0.9, color='grey')
  ax_n.set(xlabel='confidence (top-1 probability)', ylabel='photos')
  return _save(fig, path)


def overlay_curves(curves: dict[str, list[tuple[int, float]]], path: str,
                   ylabel: str = 'val accuracy (%)') -> str:
  """One line per run: [(epoch, value)], e.g. the val-accuracy curves of a sweep."""
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for i, (name, points) in enumerate(curves.items()):
    if points:
      xs, ys = zip(*points)  # past the 10 colours of the cycle, dashed lines keep runs apart
      ax.plot(xs, ys, label=name, linewidth=1.2, linestyle='-' if i < 10 else '--')
  ax.set(xlabel='epoch', ylabel=ylabel)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, loc='lower right')
  return _save(fig, path)


def accuracy_coverage(curve: dict, marks: list[dict], path: str, title: str = '') -> str:
  """Accuracy on the photos answered against the share answered (most confident first), with the
  thresholds that keep the `marks` shares."""
  fig, ax = plt.subplots(figsize=(6, 4.5))
  ax.plot(100 * np.asarray(curve['coverage']), 100 * np.asarray(curve['accuracy']), lw=2)
  for m in marks:
    ax.plot(100 * m['coverage'], 100 * m['accuracy'], 'o', color='C3')
    ax.annotate(f'p >= {m["threshold"]:.2f}: {100 * m["accuracy"]:.1f}%',
                (100 * m['coverage'], 100 * m['accuracy']), textcoords='offset points',
                xytext=(-8, 8), ha='right', fontsize=8)
  ax.set_xlabel('photos answered (%), most confident first')
  ax.set_ylabel('accuracy on the photos answered (%)')
  ax.set_xlim(0, 101)
  ax.grid(alpha=0.3)
  if title:
    ax.set_title(title, fontsize=9)
  return _save(fig, path)


def panel_title(name: str, width: int = 40, max_lines: int = 3) -> str:
  """A run's name wrapped to a small panel's width, whole up to `max_lines` lines."""
  lines = textwrap.wrap(name, width) or ['']
  if len(lines) > max_lines:
    lines = lines[:max_lines]
    lines[-1] = lines[-1][:width - 3].rstrip() + '...'
  return '\n'.join(lines)


def final_epoch_note(mean: float, std: float | None = None) -> str:
  """A panel's note (grid_titles): a run's final-epoch figure, +- its spread over folds if given."""
  return f'final epoch {mean:.1f}' + ('' if std is None else f' +- {std:.1f}')


def grid_titles(curves: dict[str, list[tuple[int, float]]],
                notes: dict[str, str] | None = None) -> dict[str, str]:
  """Each drawn run's panel title: its name, wrapped, over its note (the figure the caller means,
  e.g. a k-fold run's final-epoch mean, which need not be where a mean curve ends) or, without one,
  where its curve ends (`epoch 40: 52.6`)."""
  notes = notes or {}
  return {name: panel_title(name) + '\n' + (notes.get(name)
                                            or f'epoch {points[-1][0]}: {points[-1][1]:.1f}')
          for name, points in curves.items() if points}


def curves_grid(curves: dict[str, list[tuple[int, float]]], path: str,
                ylabel: str = 'val accuracy (%)', columns: int = 4,
                notes: dict[str, str] | None = None) -> str:
  """Small multiples: one panel per run, its curve in colour over every other run's in light grey,
  on shared axes, titled with the run's name and its note (grid_titles; no legend to cover the
  data)."""
  titles = grid_titles(curves, notes)
  names = list(titles)
  if not names:
    raise ValueError('no curve to draw')
  rows = -(-len(names) // columns)
  cols = min(columns, len(names))
  title_lines = max(t.count('\n') + 1 for t in titles.values())
  height = (1.6 + 0.13 * title_lines) * rows + 0.4
  fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, height), sharex=True, sharey=True,
                           squeeze=False)
  for k, ax in enumerate(axes.flat):
    if k >= len(names):
      ax.axis('off')
      above = axes.flat[k - cols] if k >= cols else None
      if above is not None and k - cols < len(names):  # the panel above ends its column
        above.xaxis.set_tick_params(labelbottom=True)
        above.set_xlabel('epoch', fontsize=7)
      continue
    for other in names:
      xs, ys = zip(*curves[other])
      ax.plot(xs, ys, color='0.85', linewidth=0.8)
    xs, ys = zip(*curves[names[k]])
    ax.plot(xs, ys, color='C0', linewidth=1.6)
    ax.set_title(titles[names[k]], fontsize=7)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=6)
  for ax in axes[-1]:
    ax.set_xlabel('epoch', fontsize=7)
  for ax in axes[:, 0]:
    ax.set_ylabel(ylabel, fontsize=7)
  fig.tight_layout()
  return _save(fig, path)
