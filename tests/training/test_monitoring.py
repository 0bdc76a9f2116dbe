"""What a person watches: curves.png, TensorBoard events, environment.json, the progress bar."""

import io
import json
import os

import pytest

from rockjax.training import monitoring
from helpers import assert_png


def test_training_writes_curves_and_tensorboard_events(run):
  _, workdir, _ = run
  assert_png(os.path.join(workdir, 'curves.png'))
  events = [f for f in os.listdir(os.path.join(workdir, 'tensorboard')) if 'tfevents' in f]
  assert len(events) == 1
  env = json.load(open(os.path.join(workdir, 'environment.json')))
  assert env[-1]['libraries']['jax'] and env[-1]['libraries']['flax']


def test_progress_bar_draws_only_on_a_terminal(tmp_path):
  class Tty:
    def __init__(self, tty):
      self.tty, self.text = tty, ''
    def isatty(self):
      return self.tty
    def write(self, s):
      self.text += s
    def flush(self):
      pass
  for tty in (True, False):
    stream = Tty(tty)
    bar = monitoring.ProgressBar(10, 1, 5, stream=stream, min_interval=0)
    bar.update(5)
    bar.close()
    assert ('5/10' in stream.text) == tty
    assert ('epoch 1/5' in stream.text) == tty


def test_log_lines_go_above_the_bar_not_into_it(monkeypatch):
  """A log line printed while the bar is shown starts on a line of its own (the bar is cleared
  first), and the log handler writes to its own stream again once the bar closes."""
  from absl import logging

  class Tty(io.StringIO):
    def isatty(self):
      return True
  stream = Tty()
  handler = logging.get_absl_handler().python_handler
  monkeypatch.setattr(handler, 'stream', stream)
  bar = monitoring.ProgressBar(10, 2, 3, stream=stream, min_interval=0)
  bar.update(4)
  import logging as std_logging
  # What absl's handler does with a record once the flags are parsed (as main.py's are).
  std_logging.StreamHandler.emit(handler, std_logging.LogRecord(
      'absl', std_logging.WARNING, __file__, 1, 'a message while the bar is shown', None, None))
  bar.update(8)
  bar.close()
  assert handler.stream is stream
  text = stream.getvalue()
  line = next(l for l in text.replace('\r', '\n').split('\n') if 'a message' in l)
  assert line.startswith('W') and 'epoch' not in line, repr(text)  # the bar was cleared first
  assert 'a message while the bar is shown\n' in text
  assert '4/10' in text and '8/10' in text



def test_tensorboard_events_hold_every_epochs_scalars(run):
  from tensorboard.backend.event_processing import event_file_loader
  _, workdir, _ = run
  folder = os.path.join(workdir, 'tensorboard')
  path = os.path.join(folder, os.listdir(folder)[0])
  scalars = {}
  for event in event_file_loader.LegacyEventFileLoader(path).Load():
    for value in event.summary.value:
      scalars[(event.step, value.tag)] = value.simple_value
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  assert {step for step, _ in scalars} == {r['epoch'] for r in records}
  for r in records:
    for key in monitoring.SCALARS:
      assert scalars[(r['epoch'], monitoring.scalar_tag(key))] == pytest.approx(r[key], rel=1e-6)
  assert monitoring.scalar_tag('val_accuracy') == 'val/accuracy'
