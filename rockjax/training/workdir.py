"""A run's folder: one writer at a time, checked writable and roomy enough, one config per run.

`claim(workdir, config)` takes the workdir's lock (`WorkdirLock`: a second training process on the
same workdir is refused at once, naming the holder; the OS releases the lock when its holder dies,
even by kill -9 or a reboot) and prepares the folder: `prepare_workdir` refuses a workdir whose
finished epochs were trained with a different config (only the keys in `RESUMABLE_CHANGES` may
change between a run and its resumption), but lets a workdir without a finished epoch (a first
run that failed) take the corrected config. It then saves the resolved config and appends this
session's library versions and devices to `environment.json`.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import sys
import time

import jax
import numpy as np
from absl import logging

from rockjax import configlib, fileio, schema
from rockjax.errors import WorkdirError

# Keys that may change between a run and its resumption in the same workdir.
RESUMABLE_CHANGES = ('num_epochs', 'log_every_steps', 'curves', 'curves_every_seconds',
                     'early_stopping_patience', 'data.dir',
                     'data.cache_dir', 'data.read_workers', 'eval_batch_size', 'num_devices',
                     'eval', 'predict', 'preview', 'distributed', 'data.split_from',
                     'data.where', 'data.device_memory_mb', 'data.host_threads',
                     'steps_per_dispatch', 'distributed_timeout_seconds')

LIBRARIES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'tensorflow-cpu', 'tensorflow',
             'albumentations', 'albucore', 'opencv-python-headless', 'numpy', 'ml-collections')


LOCK_FILE = '.lock'
# Files a run derives from its config before its first epoch; dropped when a workdir without a
# finished epoch takes a corrected config.
FREE_SPACE_MARGIN = 20 * 2**20  # metrics.jsonl, curves.png, TensorBoard events, temporary files
DERIVED_FILES = ('split.json', 'class_names.json', 'data_report.json', 'summary.json', 'init.json')


class WorkdirLock:
  """An exclusive, non-blocking flock on <workdir>/.lock, which records the holder."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.path = os.path.join(workdir, LOCK_FILE)
    self._fd = None

  def acquire(self) -> None:
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      with os.fdopen(fd) as f:
        holder = f.read().strip() or 'unknown'
      raise WorkdirError(f'workdir {self.workdir!r} is in use by another training run ({holder}); '
                         'wait for it to finish, or pass another --workdir') from None
    os.ftruncate(fd, 0)
    os.write(fd, (f'pid {os.getpid()} on host {socket.gethostname()}, since '
                  f'{time.strftime("%Y-%m-%d %H:%M:%S")}').encode())
    self._fd = fd

  def release(self) -> None:
    if self._fd is not None:
      os.close(self._fd)  # closing the descriptor releases the lock
      self._fd = None


def training_holder(workdir: str) -> str | None:
  """Who is training in `workdir` now ('pid P on host H, since T'), or None.

  The lock file keeps its last holder's line after release: on this host the pid tells whether it
  still runs; on another, a non-blocking shared lock tells whether the exclusive one is held."""
  path = os.path.join(workdir, LOCK_FILE)
  try:
    with open(path) as f:
      holder = f.read().strip()
  except OSError:
    return None
  words = holder.split()
  if len(words) >= 5 and words[0] == 'pid' and words[4].rstrip(',') == socket.gethostname():
    try:
      os.kill(int(words[1]), 0)
    except (ProcessLookupError, ValueError):
      return None
    except PermissionError:  # another user's live process
      pass
    return None if int(words[1]) == os.getpid() else holder
  fd = os.open(path, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    return None
  except OSError:
    return holder or 'unknown'
  finally:
    os.close(fd)


@contextlib.contextmanager
def claim(workdir: str, config, is_main: bool = True):
  """Holds the workdir's lock (process 0 only) for the block, after preparing the workdir."""
  if not is_main:
    yield
    return
  make_writable(workdir)
  lock = WorkdirLock(workdir)
  lock.acquire()
  try:
    prepare_workdir(workdir, config)
    yield
  finally:
    lock.release()


def make_writable(workdir: str) -> None:
  """Creates the workdir and checks that files can be written in it."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f'.write-test-{os.getpid()}')
    with open(probe, 'w') as f:
      f.write('ok')
    os.remove(probe)
  except OSError as e:
    raise WorkdirError(f'workdir {workdir!r} is not writable: {e}') from e


def has_finished_epoch(workdir: str) -> bool:
  """Whether a run recorded or checkpointed at least one epoch in `workdir` (or, for a k-fold
  root, in one of its fold_* runs)."""
  checkpoints = os.path.join(workdir, 'checkpoints')
  if os.path.isdir(checkpoints) and any(n.isdigit() for n in os.listdir(checkpoints)):
    return True
  metrics = os.path.join(workdir, 'metrics.jsonl')
  if os.path.exists(metrics) and os.path.getsize(metrics) > 0:
    return True
  folds = [n for n in os.listdir(workdir) if n.startswith('fold_')] if os.path.isdir(workdir) else []
  return any(has_finished_epoch(os.path.join(workdir, n)) for n in folds)


def prepare_workdir(workdir: str, config) -> None:
  """Refuses to mix configs in one workdir, then saves the config and the environment."""
  make_writable(workdir)
  saved_path = os.path.join(workdir, 'config.json')
  if os.path.exists(saved_path):
    finished = has_finished_epoch(workdir)
    try:
      changed = configlib.differences(schema.load(saved_path), config,
                                      ignore=RESUMABLE_CHANGES)
    except (ValueError, TypeError, KeyError) as e:
      if finished:
        raise WorkdirError(f'{saved_path!r} is damaged ({type(e).__name__}: {e}); restore it, or '
                           'pass another --workdir') from e
      changed = ['(unreadable config.json)']
    if changed and finished:
      raise WorkdirError(
          f'workdir {workdir!r} holds a run with a different config (changed: {changed}); '
          'resume it with the same config, or pass a new --workdir')
    if changed:
      logging.warning('Workdir %s holds no finished epoch: its config is replaced (changed: %s) '
                      'and the files derived from the old one are removed.', workdir, changed)
      for name in DERIVED_FILES:
        path = os.path.join(workdir, name)
        if os.path.exists(path):
          os.remove(path)
  configlib.save(config, saved_path)
  write_environment(os.path.join(workdir, 'environment.json'))


def processor() -> str:
  """The CPU's model name (XLA:CPU compiles for it, so figures can differ in the last digits from
  one CPU model to another, and a training run with them), or '' where it cannot be read."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def write_environment(path: str) -> None:
  """Library versions, Python, platform and devices of this run (appended to on every resume)."""
  versions = {}
  for name in LIBRARIES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  devices = jax.local_devices()
  entry = dict(time=time.strftime('%Y-%m-%dT%H:%M:%S%z'), python=sys.version.split()[0],
               platform=platform.platform(), processor=processor(), cpu_count=os.cpu_count(),
               libraries=versions, devices=[str(d) for d in devices],
               device_kind=devices[0].device_kind, process_count=jax.process_count())
  sessions = []
  if os.path.exists(path):
    try:
      with open(path) as f:
        sessions = json.load(f)
    except (OSError, ValueError):
      sessions = []
  sessions.append(entry)
  fileio.write_json(path, sessions)


def directory_bytes(path: str) -> int:
  """The bytes of the files under `path` (0 when it does not exist)."""
  total = 0
  for dirpath, _, filenames in os.walk(path):
    for name in filenames:
      try:
        total += os.lstat(os.path.join(dirpath, name)).st_size
      except OSError:
        pass
  return total


def check_free_space(workdir: str, state) -> None:
  """Room for the checkpoints, checked before training starts rather than found out after an epoch.

  At most three checkpoints exist at once (the best, the latest, the one being written); those a
  resumed run already holds are rotated out and their space reused, so only the rest must be free,
  with a margin for the metrics, plots and temporary files."""
  state_bytes = sum(np.asarray(x).nbytes for x in jax.tree.leaves(state))
  held = min(directory_bytes(os.path.join(workdir, 'checkpoints')), 2 * state_bytes)
  need = 3 * state_bytes - held + FREE_SPACE_MARGIN
  free = shutil.disk_usage(workdir).free
  if free < need:
    raise WorkdirError(f'only {free / 2**20:.0f} MiB free under {workdir!r}; checkpoints need '
                       f'about {need / 2**20:.0f} MiB')
