"""The `config.model` section: its defaults (the shared fields, then every registered network's own)
and its validation (the shared fields, then the chosen network's validator)."""

from __future__ import annotations

import ml_collections

from rockjax import checks
from rockjax.errors import ConfigError
from rockjax.models import registry
from rockjax.models.layers import CONV_IMPLS, DTYPES, FREEZE_ALL

SHARED = dict(
    name='ResidualCNN',  # a registered network (rockjax/models/__init__.py): ResidualCNN | ...
    pretrained='',  # '' trains from scratch; 'imagenet': the network's ImageNet weights
    dropout=0.2,  # before the classifier (ResidualCNN: after the stem and each stage but the last)
    bn_momentum=0.99,  # BatchNorm's running statistics: new = momentum * old + (1 - momentum) * batch
    bn_epsilon=1e-3,  # added to BatchNorm's variance (Keras' default)
    sync_batchnorm=True,  # batch statistics over the global batch (all devices)
    freeze_batchnorm=False,  # True: train with the running statistics and keep them as they are
    dtype='float32',  # float32 | bfloat16 (compute dtype; parameters stay float32)
    conv_impl='auto',  # auto | xla | matmul: how convolutions are computed (same params)
    # True: evaluation computes BatchNorm as one multiply-add per channel (scale and offset from
    # the statistics), which converters fold into the conv before it; what TFLite export uses
    fold_batchnorm=False,
)


def defaults() -> ml_collections.ConfigDict:
  fields = dict(SHARED)
  owner = {}
  for network in registry.networks():
    for key, value in network.fields.items():
      if key in fields and fields[key] != value:
        raise ValueError(f'{network.name} declares config.model.{key}={value!r}, but '
                         f'{owner.get(key, "the shared section")} gives it {fields[key]!r}')
      fields[key] = value
      owner.setdefault(key, network.name)
  return ml_collections.ConfigDict(fields)


def validate(config) -> None:
  """The shared fields, the network's own (its validator), the pretrained weights' name, the
  modules init_freeze names, and the input size the network needs."""
  m = config.model
  checks.choice(config, 'model.name', registry.names())
  network = registry.get(m.name)
  checks.choice(config, 'model.dtype', tuple(DTYPES))
  checks.choice(config, 'model.conv_impl', CONV_IMPLS)
  checks.fraction(config, 'model.dropout', True, False)
  checks.positive(config, 'model.bn_momentum')
  checks.positive(config, 'model.bn_epsilon')
  if m.pretrained:
    checks.check(m.pretrained in network.weights, 'model.pretrained',
                 f'{m.pretrained!r}: {m.name} has ' + (
                     f'the pretrained weights {tuple(network.weights)}' if network.weights else
                     'no pretrained weights (ImageNet weights: EfficientNetLite0, 1 and 2)'))
  if config.init_freeze:  # names this network's modules (after its weights: the likelier mistake)
    expand_frozen(m, config.init_freeze)
  network.validate(config)
  checks.check(not m.get('head_blocks') or 'head_blocks' in network.fields, 'model.head_blocks',
               f'{m.head_blocks!r}: {m.name} has no such option (EfficientNet-Lite networks do)')
  min_size = network.min_image_size(m)
  checks.check(config.data.image_size >= min_size, 'data.image_size',
               f'{config.data.image_size} px is too small for {m.name} as configured, which '
               f'halves the image {min_size.bit_length() - 1} times (minimum {min_size} px)')


def layer_settings(m, bn_axis_name: str | None = None) -> dict:
  """The LayerSettings fields (rockjax/models/layers.py) from the model section."""
  return dict(bn_momentum=m.bn_momentum, bn_epsilon=m.bn_epsilon,
              bn_axis_name=bn_axis_name if m.sync_batchnorm else None, dtype=DTYPES[m.dtype],
              conv_impl=m.conv_impl, bn_frozen=bool(m.freeze_batchnorm),
              depthwise_impl=m.depthwise_impl, bn_fold=bool(m.fold_batchnorm))



def expand_frozen(m, spec: str) -> tuple[str, ...]:
  """The top-level modules that an init_freeze value names: comma-separated names, 'all', and
  ranges 'first:last' (inclusive, in the network's order: registry entry `modules`)."""
  network = registry.get(m.name)
  order = network.modules(m) if network.modules else None
  names = []
  for part in (p.strip() for p in spec.split(',') if p.strip()):
    ends = [e.strip() for e in part.split(':')] if ':' in part else [part]
    for end in ends:
      if order is not None and end not in order and end != FREEZE_ALL:
        raise ConfigError(f'config.init_freeze: {end!r} is not one of {m.name}\'s top-level '
                          f'modules: {", ".join(order)} (or \'{FREEZE_ALL}\')')
    if len(ends) == 1:
      names.append(part)
      continue
    if order is None or len(ends) != 2:
      raise ConfigError(f'config.init_freeze: {part!r}: a range is first:last, in '
                        f'{m.name}\'s order of modules')
    first, last = order.index(ends[0]), order.index(ends[1])
    if first > last:
      raise ConfigError(f'config.init_freeze: {part!r} runs backwards ({ends[1]} comes before '
                        f'{ends[0]})')
    names += order[first:last + 1]
  return tuple(dict.fromkeys(names))
