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

  def summary(self, step: int, summary) -> None:
    self._write(self._event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))
    self._records.flush()

  def image(self, step: int, tag: str, png_path: str) -> None:
    """A PNG file as a TensorBoard image (the Images tab)."""
    from PIL import Image
    with Image.open(png_path) as im:
      width, height = im.size
    with open(png_path, 'rb') as f:
      encoded = f.read()
    self.summary(step, self._summary_pb2.Summary(value=[self._summary_pb2.Summary.Value(
        tag=tag, image=self._summary_pb2.Summary.Image(
            height=height, width=width, colorspace=4, encoded_image_string=encoded))]))

  def close(self) -> None:
    self._records.close()


# The HParams tab: these settings beside the run's val/accuracy scalar (its last value: the final
# epoch's).
HPARAMS = ('model.name', 'model.pretrained', 'learning_rate', 'batch_size', 'num_epochs',
           'schedule', 'weight_decay', 'label_smoothing', 'model.dropout', 'data.image_size',
           'augment.preset', 'init_freeze', 'data.class_balance', 'ema_decay', 'seed')


def hparams(config) -> dict:
  """The run's hyperparameters for TensorBoard's HParams tab: HPARAMS, as numbers, booleans or
  strings (lists and tuples as text)."""
  from rockjax.configlib.files import flatten
  flat = flatten(config.to_dict())
  return {k: (flat[k] if isinstance(flat[k], (bool, int, float, str)) else str(flat[k]))
          for k in HPARAMS if k in flat}


def write_images(workdir: str, name: str, step: int, pngs: dict) -> None:
  """PNG figures (tag -> path) into the run's TensorBoard folder, under <workdir>/tensorboard/name
  (eval: the confusion matrix, reliability, coverage; preview: the augmentation preview). Without
  the tensorboard package, nothing (one logged line)."""
  try:
    writer = EventWriter(os.path.join(workdir, 'tensorboard', name))
  except ImportError:
    logging.info('The tensorboard package is not installed: the figures are only PNG files.')
    return
  try:
    for tag, path in pngs.items():
      if path and os.path.exists(path):
        writer.image(step, tag, path)
  finally:
    writer.close()


class Monitor:
  """Per-epoch TensorBoard scalars (under `<workdir>/tensorboard`) and the curves PNG.

  The PNG is redrawn after an epoch when `curves_every_seconds` have passed since it was last
  drawn (since the run started, at first), and on close() if an epoch came after it: at the end
  of the run, and when it stops on an error or a signal. A draw takes 0.2-0.3 s on a CPU core
  (more on a busy one), more than a whole epoch of a small run. `curves=False` draws none.
  """

  def __init__(self, workdir: str, enabled: bool = True, config=None, curves: bool = True,
               curves_every_seconds: float = 0.0, clock=time.monotonic):
    self.workdir = workdir
    self.enabled = enabled
    self._curves = curves
    self._writer = None
    self._every, self._clock = curves_every_seconds, clock
    self._drawn_at = clock()
    self._undrawn = None  # (record, records) of the latest epoch, while its curves are not drawn
    if enabled:
      try:
        self._writer = EventWriter(os.path.join(workdir, 'tensorboard'))
      except ImportError:
        logging.info('The tensorboard package is not installed: no TensorBoard events (the same '
                     'numbers are in metrics.jsonl and curves.png).')
    if self._writer is not None and config is not None:
      from tensorboard.plugins.hparams import summary_v2
      self._writer.summary(0, summary_v2.hparams_pb(
          hparams(config), trial_id=os.path.basename(os.path.abspath(workdir)),
          start_time_secs=int(time.time())))

  def write_epoch(self, record: dict, records: list[dict]) -> None:
    if not self.enabled:
      return
    if self._writer is not None:
      self._writer.scalars(record['epoch'], {scalar_tag(k): record[k] for k in SCALARS
                                             if record.get(k) is not None})
    if not self._curves:
      return
    self._undrawn = (record, records)
    if self._clock() - self._drawn_at >= self._every:
      self._draw()

  def _draw(self) -> None:
    record, records = self._undrawn
    plots.training_curves(records, os.path.join(self.workdir, 'curves.png'),
                          best_epoch=record.get('best_epoch'),
                          best_accuracy=record.get('best_val_accuracy'))
    self._undrawn, self._drawn_at = None, self._clock()

  def close(self) -> None:
    """Draws the curves of the epochs not drawn yet, and closes the event file."""
    try:
      if self._undrawn is not None:
        self._draw()
    except Exception as e:  # noqa: BLE001  (called while an error may be unwinding: never hide it)
      logging.warning('curves.png was not redrawn: %s', e)
    finally:
      if self._writer is not None:
        self._writer.close()
        self._writer = None


def _in_notebook() -> bool:
  return 'ipykernel' in sys.modules


class _LinesAboveTheBar:
  """A stream for the log handler while a bar is shown: each line is printed above the bar
  (tqdm.write clears it, prints, and draws it again), never glued to it."""

  def __init__(self, stream, tqdm_cls):
    self.stream, self._tqdm, self._pending = stream, tqdm_cls, ''

  def write(self, text: str) -> None:
    self._pending += text
    *lines, self._pending = self._pending.split('\n')
    for line in lines:
      self._tqdm.write(line, file=self.stream)

  def flush(self) -> None:
    self.stream.flush()


class ProgressBar:
  """The epoch's progress as a tqdm bar (one line in place on a terminal, a widget in a notebook);
  log lines printed while it is shown go above it. Silent where stderr is neither (logs, CI)."""

  def __init__(self, total: int, epoch: int, num_epochs: int, stream=None, force: bool = False,
               min_interval: float = 0.5):
    from tqdm.auto import tqdm
    self.stream = stream or sys.stderr
    tty = hasattr(self.stream, 'isatty') and self.stream.isatty()
    self.enabled = (force or tty or _in_notebook()) and total > 0
    self._bar = tqdm(total=total, desc=f'epoch {epoch}/{num_epochs}', unit='step', leave=False,
                     file=self.stream, disable=not self.enabled, dynamic_ncols=True,
                     mininterval=min_interval)
    self._handler, self._old_stream = None, None
    if self.enabled:
      handler = getattr(logging.get_absl_handler(), 'python_handler', None)
      if handler is not None and getattr(handler, 'stream', None) is self.stream:
        self._handler, self._old_stream = handler, handler.stream
        handler.stream = _LinesAboveTheBar(self.stream, tqdm)

  def update(self, done: int) -> None:
    if self.enabled:
      self._bar.update(max(0, min(done, self._bar.total) - self._bar.n))

  def close(self) -> None:
    if self._handler is not None:
      self._handler.stream, self._handler = self._old_stream, None
    self._bar.close()
