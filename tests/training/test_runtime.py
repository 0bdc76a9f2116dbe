"""Devices and processes: multi-host set-up only when asked, and every process on one split."""

import os

import jax
import ml_collections
import numpy as np
import pytest

from rockjax.data import dataset as datasets
from rockjax.errors import ConfigError
from rockjax.training import loop, runtime, steps
from helpers import tiny_config, write_image


def test_distributed_is_requested_by_config_or_environment_only():
  off = ml_collections.ConfigDict(dict(distributed=False))
  on = ml_collections.ConfigDict(dict(distributed=True))
  assert not runtime.requested(off, environ={})
  assert runtime.requested(on, environ={})
  env = dict(JAX_COORDINATOR_ADDRESS='10.0.0.1:1234', JAX_NUM_PROCESSES='2', JAX_PROCESS_ID='1')
  assert runtime.requested(off, environ=env)
  assert not runtime.requested(off, environ=dict(env, JAX_PROCESS_ID=''))
  assert not runtime.maybe_initialize(off, environ={})


def test_runtime_takes_the_requested_devices_and_checks_the_batches_divide():
  rt = runtime.make_runtime(tiny_config(num_devices=4, batch_size=32, eval_batch_size=64))
  assert rt.num_devices == 4 and rt.is_main and rt.process_count == 1
  with pytest.raises(ConfigError, match='config.eval_batch_size: 66 does not divide over 4'):
    runtime.make_runtime(tiny_config(num_devices=4, batch_size=32, eval_batch_size=66))


def simulated(process_index: int, process_count: int = 2) -> runtime.Runtime:
  """This process's devices, presented as process `process_index` of `process_count`."""
  devices = jax.local_devices()[:1]
  return runtime.Runtime(devices=devices, mesh=steps.make_mesh(devices),
                         process_index=process_index, process_count=process_count)


def photo_folder(root, per_class=10):
  for name in ('basalt', 'granite'):
    for i in range(per_class):
      write_image(os.path.join(root, name, f'{i}.png'), seed=hash((name, i)) % 10000)
  return root


def test_every_process_trains_on_the_split_saved_by_process_0(tmp_path, monkeypatch):
  barriers = []
  monkeypatch.setattr(runtime.Runtime, 'barrier', lambda self, name: barriers.append(
      (self.process_index, name)))
  root = photo_folder(str(tmp_path / 'photos'))
  config = tiny_config(data__dir=root, data__group_duplicates=False)
  workdir = str(tmp_path / 'run')
  first = loop.load_data(config, workdir, simulated(0))
  # The folder changes (a resume after new photos arrived) before process 1 reads it.
  for i in range(10, 16):
    write_image(os.path.join(root, 'basalt', f'{i}.png'), seed=500 + i)
  fresh = datasets.load_dataset(config)  # what a process splitting on its own would train on
  assert fresh.train.paths != first.train.paths
  other = loop.load_data(config, workdir, simulated(1))
  assert other.train.paths == first.train.paths and other.val.paths == first.val.paths
  np.testing.assert_array_equal(other.train.images, first.train.images)
  assert barriers == [(0, 'rockjax: split.json written'), (1, 'rockjax: split.json written')]


def test_processes_other_than_0_write_nothing_into_the_workdir(tmp_path, monkeypatch):
  monkeypatch.setattr(runtime.Runtime, 'barrier', lambda self, name: None)
  root = photo_folder(str(tmp_path / 'photos'))
  config = tiny_config(data__dir=root)
  workdir = tmp_path / 'run'
  workdir.mkdir()
  loop.load_data(config, str(workdir), simulated(1))
  assert os.listdir(workdir) == []
