"""The errors a user can cause: one base class, so the command line reports each as one line.

`main.py` (through `rockjax.cli`) catches `UserError`, prints `error: <message>` and exits with
status 2; anything else is a bug and keeps its traceback. Each subclass also derives from the
built-in exception it refines, so callers that catch `ValueError` or `OSError` keep working.
"""

from __future__ import annotations


class UserError(Exception):
  """Something the user can fix: a config value, a data folder, a workdir, an input file."""


class ConfigError(UserError, ValueError):
  """A config value is missing, unknown or out of range; the message names the key."""


class DataError(UserError, ValueError):
  """The data folder or input files cannot be used as given; the message names the path or class."""


class WorkdirError(UserError, OSError):
  """The workdir cannot be used (not writable, too little space, or a different config)."""


class NoCheckpointError(UserError, FileNotFoundError):
  """The workdir holds no run, or no checkpoint to evaluate, predict or export."""


class DependencyError(UserError, ImportError):
  """A library that this path needs (e.g. TensorFlow for --mode=export) is not installed."""


class NonFiniteLossError(UserError, FloatingPointError):
  """Training produced a NaN or infinite loss; the checkpoints from before it are kept."""


class Interrupted(BaseException):
  """Ctrl-C (status 130) or SIGTERM (143) stopped the command; what was saved stays saved. Like
  KeyboardInterrupt, not an Exception: a handler of failed runs (a sweep's) does not swallow it."""

  def __init__(self, message: str, status: int):
    super().__init__(message)
    self.status = status


class Terminated(KeyboardInterrupt):
  """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt (`rockjax.cli`)."""
