"""Test session set-up: 8 fake CPU devices (before JAX starts), offline libraries, a private cache."""

import os
import tempfile

# Read once, when the JAX backend starts: must be set before any test imports jax.
os.environ['JAX_NUM_CPU_DEVICES'] = '8'
os.environ['JAX_PLATFORMS'] = 'cpu'
os.environ['NO_ALBUMENTATIONS_UPDATE'] = '1'
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Generated data and image caches go to a throwaway folder, shared by the session's subprocesses.
os.environ['ROCKJAX_CACHE_DIR'] = tempfile.mkdtemp(prefix='rockjax-test-cache-')

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope='session', autouse=True)
def _eight_devices():
  assert jax.local_device_count() == 8, 'JAX started before conftest could ask for 8 CPU devices'
