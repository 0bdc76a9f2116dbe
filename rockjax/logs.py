"""Logging set-up: rockjax's own INFO lines stay; the libraries' INFO chatter does not.

Orbax logs every step of every save at INFO through absl, and JAX reports each backend it probes;
both drown the per-epoch lines a user follows. Their warnings and errors still come through.
"""

from __future__ import annotations

import logging as std_logging

from absl import logging

_NOISY = ('/orbax/', '/jax/', '/jaxlib/', '/tensorflow/', '/etils/')


class _QuietLibraries(std_logging.Filter):
  def filter(self, record: std_logging.LogRecord) -> bool:
    if record.levelno >= std_logging.WARNING:
      return True
    return not any(part in record.pathname for part in _NOISY)


def quiet_libraries() -> None:
  """Drops INFO/DEBUG records that come from library code (idempotent)."""
  handler = logging.get_absl_handler()
  if not any(isinstance(f, _QuietLibraries) for f in handler.filters):
    handler.addFilter(_QuietLibraries())
