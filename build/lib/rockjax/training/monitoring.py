"""What a person watches while a run trains: TensorBoard scalars, `curves.png`, a progress bar.

Only the main process writes. TensorBoard event files are written with the `tensorboard` package's
own record writer and protocol buffers, without TensorFlow; without the `tensorboard` package, the
events are skipped with one logged line (metrics.jsonl and curves.png hold the same numbers). The
progress bar appears only when stderr is a terminal; in CI and log files the per-epoch log lines
(with images/s and ETA) are the record.
"""

from __future__ import annotations

import os
import socket
import sys
import time

from absl import logging

from rockjax import plots
from rockjax.training import history

SCALARS = ('train_loss', 'train_accuracy', 'val_loss', 'val_accuracy', 'learning_rate',
           'images_per_s', 'epoch_seconds')


def scalar_tag(key: str) -> str:
  """train_loss -> train/loss (TensorBoard groups tags by their prefix); others unchanged."""
  return key.replace('_', '/', 1) if key.startswith(('train_', 'val_')) else key


class EventWriter:
  """Scalars into one TensorBoard event file (TFRecord of `Event` protos), without TensorFlow."""

  def __init__(self, logdir: str):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter
    self._event_pb2, self._summary_pb2 = event_pb2, summary_pb2
    os.makedirs(logdir, exist_ok=True)
    self.path = os.path.join(logdir, f'events.out.tfevents.{time.time():010.0f}.'
                                     f'{socket.gethostname()}.{os.getpid()}.rockjax')
    self._file = open(self.path, 'wb')
    self._records = RecordWriter(self._file)
    self._write(event_pb2.Event(wall_time=time.time(), file_version='brain.Event:2'))

  def _write(self, event) -> None:
    self._records.write(event.SerializeToString())

  def scalars(self, step: int, values: dict) -> None:
    summary = self._summary_pb2.Summary(value=[
        self._summary_pb2.Summary.Value(tag=tag, simple_value=float(v)) for tag, v in values.items()])
    self._write(self._event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))
    self._records.flush()

  def close(self) -> None:
    self._records.close()


class Monitor:
  """Per-epoch TensorBoard scalars (under `<workdir>/tensorboard`) and the curves PNG."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.workdir = workdir
    self.enabled = enabled
    self._writer = None
    if enabled:
      try:
        self._writer = EventWriter(os.path.join(workdir, 'tensorboard'))
      except ImportError:
        logging.info('The tensorboard package is not installed: no TensorBoard events (the same '
                     'numbers are in metrics.jsonl and curves.png).')

  def write_epoch(self, record: dict, records: list[dict]) -> None:
    if not self.enabled:
      return
    if self._writer is not None:
      self._writer.scalars(record['epoch'], {scalar_tag(k): record[k] for k in SCALARS
                                             if record.get(k) is not None})
    plots.training_curves(records, os.path.join(self.workdir, 'curves.png'),
                          best_epoch=record.get('best_epoch'),
                          best_accuracy=record.get('best_val_accuracy'))

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None


class ProgressBar:
  """A one-line, in-place progress bar on a terminal; silent otherwise."""

  def __init__(self, total: int, epoch: int, num_epochs: int, stream=None, force: bool = False):
    self.stream = stream or sys.stderr
    self.enabled = force or (hasattr(self.stream, 'isatty') and self.stream.isatty())
    self.total, self.epoch, self.num_epochs = total, epoch, num_epochs
    self.start = time.perf_counter()

  def update(self, done: int) -> None:
    if not self.enabled or self.total <= 0:
      return
    frac = min(done / self.total, 1.0)
    width = 30
    bar = '#' * int(frac * width) + '-' * (width - int(frac * width))
    elapsed = time.perf_counter() - self.start
    eta = elapsed / frac - elapsed if frac > 0 else 0.0
    self.stream.write(f'\repoch {self.epoch}/{self.num_epochs} [{bar}] {done}/{self.total}'
                      f' ETA {history.format_duration(eta)}  ')
    self.stream.flush()

  def close(self) -> None:
    if self.enabled:
      self.stream.write('\r' + ' ' * 90 + '\r')
      self.stream.flush()
