"""Timing contenders fairly on a shared machine, and saying which machine it was."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import time
from typing import Callable

import numpy as np

from rockjax import fileio

LIBRARIES = ('jax', 'jaxlib', 'flax', 'optax', 'tensorflow-cpu', 'tensorflow', 'keras',
             'albumentations', 'torch')


def median_rates(contenders: dict[str, Callable[[], None]], rounds: int,
                 work_per_run: dict[str, float]) -> dict[str, float]:
  """Work per second of each contender (name -> callable doing a fixed amount of work, e.g.
  images): the median over `rounds`, the contenders taking turns in every round, so that
  background load hits them alike."""
  times = {name: [] for name in contenders}
  for _ in range(rounds):
    for name, run in contenders.items():
      start = time.perf_counter()
      run()
      times[name].append(time.perf_counter() - start)
  return {name: work_per_run[name] / float(np.median(t)) for name, t in times.items()}


def latency_ms(fn: Callable[[], object], runs: int, warmup: int = 2) -> tuple[float, float]:
  """(p50, p99) milliseconds of `fn()` over `runs` calls, after `warmup` untimed ones."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  ms = 1000 * np.asarray(times)
  return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def machine(**extra) -> dict:
  """Where and with what a result was measured: date, platform, cores, JAX backend, XLA flags and
  the versions of the libraries installed (of LIBRARIES), plus `extra`."""
  import jax
  out = dict(date=datetime.date.today().isoformat(), machine=platform.platform(),
             processor=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
             jax_backend=jax.default_backend(), xla_flags=os.environ.get('XLA_FLAGS', ''),
             libraries={})
  for lib in LIBRARIES:
    try:
      out['libraries'][lib] = importlib.metadata.version(lib)
    except importlib.metadata.PackageNotFoundError:
      pass
  out.update(extra)
  return out


def write_json(path: str, result) -> None:
  """Writes a result file as indented JSON, atomically, making its folder if needed."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fileio.write_json(path, result)
