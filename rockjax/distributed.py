"""Multi-host set-up: `jax.distributed.initialize()` when the config or the environment asks for it.

On one machine nothing happens. On a cluster, each host runs the same command; JAX connects the
processes (from JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID, or auto-detected on
Cloud TPU pod slices and SLURM), each process reads its own share of every epoch, the pmap step runs
over its local devices with gradients averaged over all devices of all hosts, and only process 0
writes logs, metrics and reports (Orbax coordinates checkpoint writes across processes).
"""

from __future__ import annotations

import os

import jax
from absl import logging

ENV_KEYS = ('JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID')


def requested(config, environ=os.environ) -> bool:
  return bool(config.distributed) or all(environ.get(k) for k in ENV_KEYS)


def maybe_initialize(config, environ=os.environ) -> bool:
  """Initialises jax.distributed if requested; returns whether it did."""
  if not requested(config, environ):
    return False
  if all(environ.get(k) for k in ENV_KEYS):
    jax.distributed.initialize(coordinator_address=environ['JAX_COORDINATOR_ADDRESS'],
                               num_processes=int(environ['JAX_NUM_PROCESSES']),
                               process_id=int(environ['JAX_PROCESS_ID']))
  else:
    jax.distributed.initialize()  # cluster auto-detection (Cloud TPU, SLURM, ...)
  logging.info('jax.distributed: process %d of %d, %d local / %d global devices.',
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())
  return True
