"""Logging set-up: rockjax's own INFO lines stay; the libraries' INFO chatter does not.

Orbax logs every step of every save at INFO through absl, and JAX reports each backend it probes;
both drown the per-epoch lines a user follows. Their warnings and errors still come through.
"""

from __future__ import annotations

import logging as std_logging
import sys

from absl import logging

_NOISY = ('/orbax/', '/jax/', '/jaxlib/', '/tensorflow/', '/etils/')


# Orbax warnings that only say rockjax did what it meant: eval, predict and export open the
# checkpoints read-only, on every run.
_EXPECTED = ('CheckpointManagerOptions.read_only=True', 'Given directory is read only')


class _QuietLibraries(std_logging.Filter):
  def filter(self, record: std_logging.LogRecord) -> bool:
    if record.levelno >= std_logging.WARNING:
      return not ('/orbax/' in record.pathname and record.levelno == std_logging.WARNING
                  and str(record.msg).startswith(_EXPECTED))
    return not any(part in record.pathname for part in _NOISY)


def quiet_libraries() -> None:
  """Drops INFO/DEBUG records that come from library code (idempotent). Also asyncio's "Future
  exception was never retrieved": Orbax reads a checkpoint's arrays concurrently, and when one is
  damaged every read logs the same TensorStore error; rockjax reports it once, naming the
  checkpoint (rockjax/training/checkpointing.py)."""
  # On absl's handler (the command line) and on the 'absl' logger itself (the Python API, where
  # Python's own handlers print absl's records).
  for holder in (logging.get_absl_handler(), std_logging.getLogger('absl')):
    if not any(isinstance(f, _QuietLibraries) for f in holder.filters):
      holder.addFilter(_QuietLibraries())
  std_logging.getLogger('asyncio').setLevel(std_logging.CRITICAL)
  if sys.unraisablehook is sys.__unraisablehook__:
    sys.unraisablehook = _quiet_closed_loop


def _quiet_closed_loop(unraisable) -> None:
  """After a failed read, TensorStore still completes the damaged checkpoint's other reads and
  calls back into Orbax's asyncio loop, which has closed: "Event loop is closed", once per array.
  Those are dropped; anything else goes to Python's default hook."""
  error = unraisable.exc_value
  if isinstance(error, RuntimeError) and str(error) == 'Event loop is closed':
    return
  sys.__unraisablehook__(unraisable)
