"""The devices and processes a run trains on, and multi-host set-up.

`maybe_initialize(config)` calls `jax.distributed.initialize()` when the config or the environment
asks for it. On one machine nothing happens. On a cluster, each host runs the same command; JAX
connects the processes (from JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID, or
auto-detected on Cloud TPU pod slices and SLURM), each process reads its own share of every epoch,
the pmap step runs over its local devices with gradients averaged over all devices of all hosts,
and only process 0 writes logs, metrics and reports (Orbax coordinates checkpoint writes).
`make_runtime(config)` picks this process's devices and checks the batch sizes divide over them.
"""

from __future__ import annotations

import dataclasses
import os

import jax
from absl import logging

from rockjax.errors import ConfigError
from rockjax.training import steps

ENV_KEYS = ('JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID')


def requested(config, environ=os.environ) -> bool:
  return bool(config.distributed) or all(environ.get(k) for k in ENV_KEYS)


def maybe_initialize(config, environ=os.environ) -> bool:
  """Initialises jax.distributed if requested; returns whether it did.

  CPU devices exchange gradients over Gloo (so several processes on one machine, or CPU hosts,
  train together); a process that stops answering for `distributed_timeout_seconds` ends the
  others with an error instead of a hang."""
  if not requested(config, environ):
    return False
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # GPUs and TPUs ignore it
  timeouts = dict(heartbeat_timeout_seconds=int(config.distributed_timeout_seconds))
  if all(environ.get(k) for k in ENV_KEYS):
    jax.distributed.initialize(coordinator_address=environ['JAX_COORDINATOR_ADDRESS'],
                               num_processes=int(environ['JAX_NUM_PROCESSES']),
                               process_id=int(environ['JAX_PROCESS_ID']), **timeouts)
  else:
    jax.distributed.initialize(**timeouts)  # cluster auto-detection (Cloud TPU, SLURM, ...)
  logging.info('jax.distributed: process %d of %d, %d local / %d global devices.',
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())
  return True


@dataclasses.dataclass
class Runtime:
  """The devices this process trains on, and its place among all processes."""
  devices: list
  mesh: jax.sharding.Mesh
  process_index: int
  process_count: int

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  @property
  def is_main(self) -> bool:
    return self.process_index == 0

  @property
  def pmap_devices(self) -> list:
    """The devices the pmapped steps run over: this process's own, or with several processes
    every device of every process (each process feeding its local ones), so that gradients,
    BatchNorm statistics and metrics are reduced over all of them."""
    return self.devices if self.process_count == 1 else jax.devices()

  def barrier(self, name: str) -> None:
    """Waits until every process reaches the same named point (no-op for one process)."""
    if self.process_count > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices(name)


def make_runtime(config) -> Runtime:
  local = jax.local_devices()
  n = config.num_devices or len(local)
  if n > len(local):
    raise ConfigError(f'config.num_devices: {n} requested but only {len(local)} local '
                      f'{local[0].platform} device(s) exist')
  if jax.process_count() > 1 and n != len(local):
    raise ConfigError(f'config.num_devices: with {jax.process_count()} processes every local '
                      f'device takes part; use 0 (all {len(local)}), not {n}')
  devices = local[:n]
  rt = Runtime(devices=devices, mesh=steps.make_mesh(devices), process_index=jax.process_index(),
               process_count=jax.process_count())
  for key in ('batch_size', 'eval_batch_size'):
    total = n * rt.process_count
    if config[key] % total:
      raise ConfigError(f'config.{key}: {config[key]} does not divide over {total} device(s) '
                        f'({rt.process_count} process(es) x {n} local); use a multiple of {total}')
  return rt
