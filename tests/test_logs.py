"""rockjax/logs.py: libraries' INFO chatter and Orbax's expected read-only warnings are dropped;
rockjax's own lines and every other library warning stay."""

import logging as std_logging
import os
import subprocess
import sys

from absl import logging

from helpers import ROOT
from rockjax import logs


def record(pathname: str, level: int, msg: str) -> std_logging.LogRecord:
  return std_logging.LogRecord('absl', level, pathname, 1, msg, None, None)


def test_the_filter_keeps_what_a_user_needs():
  logs.quiet_libraries()
  logs.quiet_libraries()  # idempotent
  handler = logging.get_absl_handler()
  assert sum(isinstance(f, logs._QuietLibraries) for f in handler.filters) == 1
  keep = next(f for f in handler.filters if isinstance(f, logs._QuietLibraries)).filter
  orbax = '/site-packages/orbax/checkpoint/checkpoint_manager.py'
  assert not keep(record(orbax, std_logging.WARNING, 'Given directory is read only=%s'))
  assert not keep(record(orbax, std_logging.WARNING,
                         'CheckpointManagerOptions.read_only=True, setting save_interval_steps=0.'))
  assert not keep(record(orbax, std_logging.INFO, 'Saving checkpoint'))
  assert keep(record(orbax, std_logging.WARNING, 'Checkpoint at step 3 is corrupt'))
  assert keep(record(orbax, std_logging.ERROR, 'Given directory is read only=%s'))
  assert keep(record('/work/rockjax/training/loop.py', std_logging.INFO, 'epoch 1/3'))


def test_the_python_api_prints_no_read_only_warnings(run):
  """rockjax.load from Python (no absl handler in charge): Orbax's read-only warnings are not
  printed, on the 'absl' logger's own filter."""
  config, workdir, _ = run
  code = ('import rockjax, sys\n'
          f'rockjax.load({workdir!r})\n'
          'print("loaded", file=sys.stderr)\n')
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
  assert out.returncode == 0, out.stderr[-2000:]
  assert 'loaded' in out.stderr and 'read only' not in out.stderr, out.stderr[-2000:]
