"""What stops a training run from outside, told in one line: Ctrl-C, SIGTERM, a disk that fills.

`one_line(workdir, loop)` wraps the epoch loop (and the closing of the checkpointer, which waits for
the last save). Whatever it catches, every checkpoint already written stays as it is; the message
says which epoch was under way, which checkpoint a rerun resumes from, and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal

from rockjax.errors import Interrupted, Terminated, WorkdirError

INTERRUPT_STATUS = 130  # 128 + SIGINT, as shells report it
TERMINATE_STATUS = 143  # 128 + SIGTERM
DISK_FULL_MARKERS = ('No space left on device', 'RESOURCE_EXHAUSTED', 'Disk quota exceeded')


# Ctrl-C / SIGTERM exceptions raised by our handlers and not yet caught. Python drops an exception
# raised inside a garbage-collection callback (JAX registers some), and a signal handled there would
# be lost: the training loop re-raises what is left here (`raise_pending_signal`).
_pending: list[type[KeyboardInterrupt]] = []


@contextlib.contextmanager
def signals_as_interrupts():
  """Ctrl-C raises KeyboardInterrupt and SIGTERM `Terminated` (a KeyboardInterrupt) in the main
  thread, so both unwind the same way (pending checkpoint saves finish, the workdir lock is
  released), and neither is lost when a callback swallows its exception."""
  def handler(signum, frame):
    exc_type = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    _pending.append(exc_type)
    raise exc_type()
  try:
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
  except ValueError:  # not the main thread: leave signals alone
    yield
    return
  try:
    yield
  finally:
    for s, h in previous.items():
      signal.signal(s, h)
    _pending.clear()


def raise_pending_signal() -> None:
  """Raises the Ctrl-C or SIGTERM whose exception was swallowed where it was first raised."""
  if _pending:
    raise _pending.pop()()


def saved_epochs(workdir: str) -> list[int]:
  """The epochs whose checkpoints are on disk (Orbax names each finished one by its epoch)."""
  try:
    names = os.listdir(os.path.join(workdir, 'checkpoints'))
  except OSError:
    return []
  return sorted(int(n) for n in names if n.isdigit())


def is_disk_full(error: BaseException) -> bool:
  """ENOSPC (or a quota) anywhere in the exception's chain, as OSError or in a wrapped message."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
      return True
    if any(marker in str(error) for marker in DISK_FULL_MARKERS):
      return True
    error = error.__cause__ or error.__context__
  return False


def resume_point(workdir: str) -> str:
  saved = saved_epochs(workdir)
  return (f'the checkpoint of epoch {saved[-1]} is kept' if saved else
          'no epoch had been saved yet')


@contextlib.contextmanager
def one_line(workdir: str, loop):
  """Ctrl-C and SIGTERM become `Interrupted` (status 130 / 143), a full disk a `WorkdirError`."""
  try:
    yield
  except KeyboardInterrupt as e:
    _pending.clear()  # caught here: nothing left to re-raise
    status = TERMINATE_STATUS if isinstance(e, Terminated) else INTERRUPT_STATUS
    what = 'terminated (SIGTERM)' if status == TERMINATE_STATUS else 'interrupted'
    raise Interrupted(f'{what} during epoch {loop.epoch + 1}; {resume_point(workdir)}; rerun the '
                      f'same command to resume', status) from None
  except Exception as e:  # noqa: BLE001 - only a full disk is translated, the rest re-raised
    if not is_disk_full(e):
      raise
    free = shutil.disk_usage(workdir).free if os.path.isdir(workdir) else 0
    raise WorkdirError(f'the disk under {workdir!r} filled up ({loop.epoch} epoch(s) trained, '
                       f'{free / 2**20:.0f} MiB free now); {resume_point(workdir)}: free space and '
                       f'rerun the same command to resume') from None
