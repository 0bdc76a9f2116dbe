"""The `config.augment` section: the preset, where it runs, mixing, and every preset's knobs (their
defaults and valid ranges are the preset table's own, in presets.py)."""

from __future__ import annotations

import ml_collections

from rockjax.augment import presets
from rockjax.checks import check, choice, positive
from rockjax.errors import ConfigError


def defaults() -> ml_collections.ConfigDict:
  a = ml_collections.ConfigDict()
  a.preset = 'flip_bright'  # a name in rockjax/augment/presets.py's table
  a.where = 'host'  # host: Albumentations in tf.data | device: jax.random in the train step
  a.mixup_alpha = 0.0  # > 0: mixup with lam ~ Beta(alpha, alpha), in the train step
  a.cutmix_alpha = 0.0  # > 0: cutmix (both > 0: one of the two per step, p=0.5 each)
  for knob in presets.all_knobs():  # the presets' own knobs, documented in the table
    a[knob.name] = knob.default
  return a


def validate(config) -> None:
  a = config.augment
  positive(config, 'augment.mixup_alpha', allow_zero=True)
  positive(config, 'augment.cutmix_alpha', allow_zero=True)
  choice(config, 'augment.where', presets.WHERE)
  check(config.data.where == 'host' or a.where == 'device' or a.preset == 'none', 'data.where',
        f'data.where=device keeps the images on the devices, so the host cannot augment them '
        f'(augment.where=host, preset {a.preset!r}); use --config.augment.where=device, or '
        'data.where=host')
  choice(config, 'augment.preset', tuple(presets.PRESETS))
  for knob in presets.all_knobs():
    value = repr(a[knob.name])
    check(knob.valid(a[knob.name]), f'augment.{knob.name}',
          f'must be {knob.valid_range}, got {value if len(value) <= 60 else value[:57] + "..."}')
  if a.where == 'device':
    check(a.preset in presets.DEVICE_PRESETS, 'augment.preset',
          f'{a.preset!r} has no device implementation (device presets: '
          f'{presets.DEVICE_PRESETS}); use augment.where=host')
    return
  try:  # the host path: build the Albumentations pipeline once (custom transforms are parsed)
    presets.host_pipeline(presets.spec_from_config(a), config.data.image_size)
  except (ValueError, TypeError, SyntaxError) as e:
    raise ConfigError(f'config.augment: {e}') from e
