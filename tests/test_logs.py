"""rockjax/logs.py: libraries' INFO chatter and Orbax's expected read-only warnings are dropped;
rockjax's own lines and every other library warning stay."""

import logging as std_logging

from absl import logging

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
