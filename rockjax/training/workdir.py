"""A run's folder: created, checked writable and roomy enough, and never shared by two configs.

`prepare_workdir` refuses a workdir that holds a run with a different config (only the keys in
`RESUMABLE_CHANGES` may change between a run and its resumption), then saves the resolved config
and appends this session's library versions and devices to `environment.json`.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import sys
import time

import jax
import numpy as np

from rockjax import configlib, fileio
from rockjax.errors import WorkdirError

# Keys that may change between a run and its resumption in the same workdir.
RESUMABLE_CHANGES = ('num_epochs', 'log_every_steps', 'early_stopping_patience', 'data.dir',
                     'data.cache_dir', 'data.read_workers', 'eval_batch_size', 'num_devices',
                     'eval', 'predict', 'preview', 'distributed', 'data.split_from',
                     'data.where', 'data.device_memory_mb', 'data.host_threads',
                     'steps_per_dispatch')

LIBRARIES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'tensorflow-cpu', 'tensorflow',
             'albumentations', 'albucore', 'opencv-python-headless', 'numpy', 'ml-collections')


def prepare_workdir(workdir: str, config) -> None:
  """Creates the workdir, checks it is writable, and refuses to mix configs in one workdir."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f'.write-test-{os.getpid()}')
    with open(probe, 'w') as f:
      f.write('ok')
    os.remove(probe)
  except OSError as e:
    raise WorkdirError(f'workdir {workdir!r} is not writable: {e}') from e
  saved_path = os.path.join(workdir, 'config.json')
  if os.path.exists(saved_path):
    changed = configlib.differences(configlib.load(saved_path), config, ignore=RESUMABLE_CHANGES)
    if changed:
      raise WorkdirError(
          f'workdir {workdir!r} holds a run with a different config (changed: {changed}); '
          'resume it with the same config, or pass a new --workdir')
  configlib.save(config, saved_path)
  write_environment(os.path.join(workdir, 'environment.json'))


def write_environment(path: str) -> None:
  """Library versions, Python, platform and devices of this run (appended to on every resume)."""
  versions = {}
  for name in LIBRARIES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  entry = dict(time=time.strftime('%Y-%m-%dT%H:%M:%S%z'), python=sys.version.split()[0],
               platform=platform.platform(), libraries=versions,
               devices=[str(d) for d in jax.local_devices()], process_count=jax.process_count())
  sessions = []
  if os.path.exists(path):
    try:
      with open(path) as f:
        sessions = json.load(f)
    except (OSError, ValueError):
      sessions = []
  sessions.append(entry)
  fileio.write_json(path, sessions)


def check_free_space(workdir: str, state) -> None:
  """Two checkpoints must fit (with room to spare) before training starts, not after an epoch."""
  state_bytes = sum(np.asarray(x).nbytes for x in jax.tree.leaves(state))
  need = 3 * state_bytes + 50 * 2**20
  free = shutil.disk_usage(workdir).free
  if free < need:
    raise WorkdirError(f'only {free / 2**20:.0f} MiB free under {workdir!r}; checkpoints need '
                       f'about {need / 2**20:.0f} MiB')
