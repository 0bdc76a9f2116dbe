"""What a person watches while a run trains: TensorBoard scalars, `curves.png`, a progress bar.

Only the main process writes. The progress bar appears only when stderr is a terminal; in CI and log
files the per-epoch log lines (with images/s and ETA) are the record.
"""

from __future__ import annotations

import os
import sys
import time

import tensorflow as tf

from rockjax import history, plots

SCALARS = ('train_loss', 'train_accuracy', 'val_loss', 'val_accuracy', 'learning_rate',
           'images_per_s', 'epoch_seconds')


class Monitor:
  """Per-epoch TensorBoard scalars (under `<workdir>/tensorboard`) and the curves PNG."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.workdir = workdir
    self.enabled = enabled
    self._writer = (tf.summary.create_file_writer(os.path.join(workdir, 'tensorboard'))
                    if enabled else None)

  def write_epoch(self, record: dict, records: list[dict]) -> None:
    if not self.enabled:
      return
    with self._writer.as_default():
      for key in SCALARS:
        if key in record:
          tf.summary.scalar(key.replace('_', '/', 1) if key.startswith(('train_', 'val_')) else key,
                            record[key], step=record['epoch'])
    self._writer.flush()
    plots.training_curves(records, os.path.join(self.workdir, 'curves.png'),
                          best_epoch=record.get('best_epoch'))

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()


class ProgressBar:
  """A one-line, in-place progress bar on a terminal; silent otherwise."""

  def __init__(self, total: int, epoch: int, num_epochs: int, stream=None, force: bool = False):
    self.stream = stream or sys.stderr
    self.enabled = force or (hasattr(self.stream, 'isatty') and self.stream.isatty())
    self.total, self.epoch, self.num_epochs = total, epoch, num_epochs
    self.start = time.perf_counter()

  def update(self, done: int, loss: float | None = None) -> None:
    if not self.enabled or self.total <= 0:
      return
    frac = min(done / self.total, 1.0)
    width = 30
    bar = '#' * int(frac * width) + '-' * (width - int(frac * width))
    elapsed = time.perf_counter() - self.start
    eta = elapsed / frac - elapsed if frac > 0 else 0.0
    loss_text = f' loss {loss:.4f}' if loss is not None else ''
    self.stream.write(f'\repoch {self.epoch}/{self.num_epochs} [{bar}] {done}/{self.total}'
                      f'{loss_text} ETA {history.format_duration(eta)}  ')
    self.stream.flush()

  def close(self) -> None:
    if self.enabled:
      self.stream.write('\r' + ' ' * 90 + '\r')
      self.stream.flush()
