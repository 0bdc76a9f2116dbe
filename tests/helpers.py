"""Shared test helpers: a tiny, fast config, and builders of image folders."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
from PIL import Image

from rockjax import configlib, schema


def tiny_config(**overrides) -> ml_collections.ConfigDict:
  """A small ResidualCNN on a small generated set: compiles in seconds, trains in seconds.

  Keyword names use '__' for '.', e.g. tiny_config(model__dropout=0.1).
  """
  c = schema.base_config()
  c.num_epochs = 2
  c.batch_size = 32
  c.eval_batch_size = 64
  c.num_devices = 1
  c.learning_rate = 3e-3
  c.schedule = 'constant'
  c.model.widths = (8, 16)
  c.model.shortcut_kernels = (3, 3)
  c.model.convs_per_stage = 2
  c.model.dropout = 0.0
  c.model.bn_momentum = 0.9
  c.data.image_size = 16
  c.data.synthetic.num_per_class = 24
  c.data.synthetic.image_size = 32
  c.augment.preset = 'none'
  # A draw of curves.png takes 0.2-0.5 s, more than a tiny run's epochs: tests that look at it
  # ask for it (curves=True).
  c.curves = False
  for key, value in overrides.items():
    configlib.set_value(c, key.replace('__', '.'), value)
  schema.validate(c)
  return c


def write_image(path: str, array: np.ndarray | None = None, mode: str = 'RGB', size=(40, 30),
                fmt: str | None = None, seed: int = 0, **save_kwargs) -> str:
  """Writes a random (or given) image in the given Pillow mode and format; returns the path."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  rng = np.random.default_rng(seed)
  if array is None:
    array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
  img = Image.fromarray(array)
  if mode != 'RGB':
    img = img.convert(mode)
  img.save(path, format=fmt, **save_kwargs)
  return path


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository
SHARED_DATA = os.path.join(os.path.dirname(ROOT), 'shared', 'data')  # ../shared/data, if present


TIMING = ('images_per_s', 'epoch_seconds', 'elapsed_seconds', 'eta_seconds')  # vary run to run


def comparable_records(workdir) -> list[dict]:
  """A run's metrics.jsonl without its timing fields: what two equivalent runs share exactly."""
  with open(os.path.join(str(workdir), 'metrics.jsonl')) as f:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in f]


def run_main(*args, cwd=ROOT, timeout=120, env=None):
  """`python main.py ARGS` in a subprocess (what a user types); a CompletedProcess."""
  env = dict(os.environ if env is None else env, PYTHONPATH=ROOT)
  return subprocess.run([sys.executable, os.path.join(ROOT, 'main.py'), *args], cwd=cwd,
                        capture_output=True, text=True, timeout=timeout, env=env)


def assert_png(path: str) -> None:
  """`path` is a complete, valid PNG file."""
  assert os.path.exists(path), path
  with Image.open(path) as img:
    img.verify()
    assert img.format == 'PNG'


def damage(directory, epoch: int) -> None:
  """Overwrites a checkpoint's array data, as a disk error or a partial copy would."""
  files = glob.glob(os.path.join(str(directory), str(epoch), 'state', '**', 'd', '*'),
                    recursive=True)
  assert files
  for path in files:
    with open(path, 'wb') as f:
      f.write(b'\0 not a checkpoint any more')
