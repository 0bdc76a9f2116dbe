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
  assert env[-1]['cpu_count'] >= 1 and env[-1]['device_kind'] == 'cpu'
  assert isinstance(env[-1]['processor'], str)  # the CPU's model name ('' where none is given)
  if os.path.exists('/proc/cpuinfo'):
    assert env[-1]['processor']


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
  path = os.path.join(folder, next(n for n in os.listdir(folder) if n.startswith('events.')))
  scalars = {}
  for event in event_file_loader.LegacyEventFileLoader(path).Load():
    for value in event.summary.value:
      if value.WhichOneof('value') == 'simple_value':
        scalars[(event.step, value.tag)] = value.simple_value
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  assert {step for step, _ in scalars} == {r['epoch'] for r in records}
  for r in records:
    for key in monitoring.SCALARS:
      assert scalars[(r['epoch'], monitoring.scalar_tag(key))] == pytest.approx(r[key], rel=1e-6)
  assert monitoring.scalar_tag('val_accuracy') == 'val/accuracy'


def _events(folder):
  from tensorboard.backend.event_processing import event_file_loader
  out = []
  for name in sorted(os.listdir(folder)):
    if name.startswith('events.'):
      out += list(event_file_loader.LegacyEventFileLoader(os.path.join(folder, name)).Load())
  return out


def test_tensorboard_holds_the_runs_hparams(run):
  """The HParams tab: one session start with the run's settings (its val/accuracy scalars are the
  metric)."""
  from tensorboard.plugins.hparams import metadata, plugin_data_pb2
  config, workdir, _ = run
  starts = [v for e in _events(os.path.join(workdir, 'tensorboard')) for v in e.summary.value
            if v.tag == metadata.SESSION_START_INFO_TAG]
  assert starts
  content = plugin_data_pb2.HParamsPluginData.FromString(starts[0].metadata.plugin_data.content)
  hparams = content.session_start_info.hparams
  assert hparams['learning_rate'].number_value == config.learning_rate
  assert hparams['model.name'].string_value == config.model.name


def test_eval_and_preview_figures_are_tensorboard_images(run, tmp_path):
  from rockjax import cli
  from rockjax.serving import evaluation
  config, workdir, _ = run
  e = config.eval.copy_and_resolve_references()
  e.output_dir = str(tmp_path / 'eval')
  report = evaluation.evaluate_workdir(workdir, e)
  images = {v.tag: v.image for ev in _events(os.path.join(workdir, 'tensorboard', 'eval'))
            for v in ev.summary.value if v.HasField('image')}
  assert {'eval/confusion_matrix', 'eval/reliability', 'eval/accuracy_coverage'} <= set(images)
  assert images['eval/confusion_matrix'].encoded_image_string.startswith(b'\x89PNG')
  assert images['eval/confusion_matrix'].width > 100
  cli.preview(config, workdir, [])
  tags = {v.tag for ev in _events(os.path.join(workdir, 'tensorboard', 'preview'))
          for v in ev.summary.value if v.HasField('image')}
  assert tags == {f'preview/{config.augment.preset}'}
  assert report['checkpoint_epoch'] >= 1


def test_curves_are_drawn_at_most_every_so_often_and_always_at_the_end(tmp_path, monkeypatch):
  """curves.png takes 0.2-0.3 s a draw, and was drawn after every epoch: more than a small run's
  epoch. It is drawn when curves_every_seconds have passed, and on close() (the run's end, an
  error, a signal) if an epoch came after the last draw."""
  drawn = []  # the epochs each draw showed
  monkeypatch.setattr(monitoring.plots, 'training_curves',
                      lambda records, path, **kw: drawn.append([r['epoch'] for r in records]))
  now = [100.0]
  monitor = monitoring.Monitor(str(tmp_path), config=None, curves_every_seconds=30,
                               clock=lambda: now[0])
  records = []
  for epoch, seconds in ((1, 10), (2, 10), (3, 15), (4, 5)):
    now[0] += seconds
    records.append({'epoch': epoch})
    monitor.write_epoch(records[-1], list(records))
  assert drawn == [[1, 2, 3]]  # 35 s after the start; epoch 4 came 5 s after that draw
  monitor.close()
  assert drawn == [[1, 2, 3], [1, 2, 3, 4]]
  monitor.close()  # nothing new: no second draw
  assert len(drawn) == 2
  every_epoch = monitoring.Monitor(str(tmp_path), curves_every_seconds=0, clock=lambda: now[0])
  for epoch in (1, 2):
    every_epoch.write_epoch({'epoch': epoch}, [{'epoch': e} for e in range(1, epoch + 1)])
  every_epoch.close()
  assert drawn[2:] == [[1], [1, 2]]
  off = monitoring.Monitor(str(tmp_path), curves=False, curves_every_seconds=0,
                           clock=lambda: now[0])
  off.write_epoch({'epoch': 1}, [{'epoch': 1}])
  off.close()
  assert len(drawn) == 4  # config.curves=False: never drawn


def test_a_failed_draw_at_close_is_a_warning_that_hides_nothing(tmp_path, monkeypatch, caplog):
  def fail(*args, **kwargs):
    raise OSError('No space left on device')
  monkeypatch.setattr(monitoring.plots, 'training_curves', fail)
  monitor = monitoring.Monitor(str(tmp_path), curves_every_seconds=1e9)
  monitor.write_epoch({'epoch': 1}, [{'epoch': 1}])  # not drawn yet
  with caplog.at_level('WARNING'):
    monitor.close()
  assert 'curves.png was not redrawn: No space left on device' in caplog.text
