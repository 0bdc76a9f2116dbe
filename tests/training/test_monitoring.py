"""What a person watches: curves.png, TensorBoard events, environment.json, the progress bar."""

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
    bar = monitoring.ProgressBar(10, 1, 5, stream=stream)
    bar.update(5)
    bar.close()
    assert ('5/10' in stream.text) == tty


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
