"""Test session set-up: 8 fake CPU devices (before JAX starts), a private cache; rockjax's own
process-wide defaults (offline libraries, XLA flags) come from importing it, as in every entry point."""

import os
import shutil
import sys
import tempfile

# Read once, when the JAX backend starts: must be set before any test imports jax.
os.environ['JAX_NUM_CPU_DEVICES'] = '8'
os.environ['JAX_PLATFORMS'] = 'cpu'
# Random bits the legacy way: with JAX's default (partitionable) threefry, one jitted random draw
# compiles in ~1 s on XLA:CPU, and the tiny network's jitted init in 5.2 s; with this, 0.15 s and
# 0.9 s (a cold tiny run: 17.4 -> 8.5 s). The bits differ, not what the code does with them; runs
# outside the tests keep JAX's default. Subprocesses inherit it.
os.environ['JAX_THREEFRY_PARTITIONABLE'] = '0'
# Generated data and image caches go to a throwaway folder, shared by the worker's subprocesses.
os.environ['ROCKJAX_CACHE_DIR'] = tempfile.mkdtemp(prefix='rockjax-test-cache-')
# Compiled programs go to one folder for the whole session: many tests compile the same tiny
# network's steps (in both xdist workers and in subprocesses), and JAX's persistent cache compiles
# each distinct program once. The pytest process that starts first makes it; the xdist workers
# it starts inherit the variable. The folder's path is part of JAX's cache key (JAX puts XLA's
# autotuning cache in it, and that option is hashed), so a folder per worker shared nothing
# between workers. (A program both workers compile at once is written twice; one read while the
# other writes fails to decompress, and JAX warns and compiles it.)
_MADE_HERE = [os.environ['ROCKJAX_CACHE_DIR']]  # removed when this process's session ends
if 'ROCKJAX_TEST_COMPILE_CACHE' not in os.environ:
  os.environ['ROCKJAX_TEST_COMPILE_CACHE'] = tempfile.mkdtemp(prefix='rockjax-test-jax-')
  _MADE_HERE.append(os.environ['ROCKJAX_TEST_COMPILE_CACHE'])
os.environ['JAX_COMPILATION_CACHE_DIR'] = os.environ['ROCKJAX_TEST_COMPILE_CACHE']
os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0.2'

# The tests of scripts/ import the scripts as modules.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'scripts'))

import rockjax  # noqa: E402,F401  (rockjax/environment.py, before JAX starts)
import jax  # noqa: E402
import pytest  # noqa: E402


def pytest_unconfigure(config):
  for path in _MADE_HERE:
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope='session', autouse=True)
def _eight_devices():
  assert jax.local_device_count() == 8, 'JAX started before conftest could ask for 8 CPU devices'


@pytest.fixture(scope='session')
def run(tmp_path_factory):
  """A finished tiny training run, shared by the tests of what comes after training:
  (config, workdir, summary)."""
  from rockjax.training import loop
  from helpers import tiny_config
  workdir = str(tmp_path_factory.mktemp('run'))
  config = tiny_config(num_epochs=3, predict__latency_runs=20, predict__batch_size=16,
                       curves=True)
  summary = loop.train_and_evaluate(config, workdir)
  return config, workdir, summary


# The modules that hold the suite's longest tests (20-100 s each on 2 cores, `--durations`), run
# first, longest first. --dist=worksteal hands each worker a contiguous half of the collection and
# an idle worker takes tests from the end of the other's queue, so what runs last is what the
# collection ends with: short tests there keep both workers busy to the end, where a long test
# started late left one idle. Within a module the order is unchanged (its fixtures are built once).
LONGEST_FIRST = (
    'tests/scripts/test_device_check.py',
    'tests/training/test_feeding.py',
    'tests/training/test_multiprocess.py',
    'tests/training/test_finetune.py',
    'tests/test_cli.py',
    'tests/training/test_crash.py',
    'tests/training/test_features.py',
    'tests/training/test_screening.py',
    'tests/training/test_steps.py',
    'tests/training/test_loop.py',
)


def pytest_collection_modifyitems(items):
  rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.nodeid.split('::')[0], len(rank)))
