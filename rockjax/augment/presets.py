"""The augmentation presets: one table, keyed by name, that the config, validation and both code
paths read.

Each `Preset` holds its knobs (config keys under `augment.`, with their defaults and valid ranges)
and both of its implementations: `host` builds Albumentations transforms (rockjax/augment/host.py,
applied per example in the tf.data pipeline) and `device` transforms a batch with jax.random inside
the compiled train step (rockjax/augment/device.py), or is None when the preset has no device
version. The augment config section (section.py) takes the knob defaults from here and the valid
names and ranges, as big_vision's preprocessing registry does; the implementations themselves take
an explicit `Spec` (a preset name and its knob values) and read no defaults of their own.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax.numpy as jnp

from rockjax import pixels
from rockjax.augment import device, host

WHERE = ('host', 'device')  # augment.where
MAX_CUSTOM_CHARS = 2000  # augment.custom: a recipe, not a program (parsing is bounded by it)


@dataclasses.dataclass(frozen=True)
class Knob:
  """One config field `augment.<name>` that tunes a preset."""
  name: str
  default: Any
  doc: str
  valid: Callable[[Any], bool] = lambda value: True
  valid_range: str = ''  # the rule `valid` checks, for the error message


@dataclasses.dataclass(frozen=True)
class Preset:
  name: str
  doc: str
  host: Callable  # (spec, image_size) -> list of Albumentations transforms
  device: Callable | None  # (key, float images [N, H, W, 3] in [0, 1], spec) -> same; None: host only
  knobs: tuple[Knob, ...] = ()


STRONG_KNOBS = (
    Knob('crop_min_scale', 0.35, 'random resized crops keep 35-100% of the area; 1.0: no crop',
         lambda v: 0.0 < v <= 1.0, 'in (0, 1] (1 turns the crop off)'),
    Knob('rotate90', True, 'random multiples of 90 degrees (besides the two flips)'),
    Knob('colour_jitter', 0.2, 'brightness/contrast/saturation +-20% (hue +-2%), p=0.8; 0: off',
         lambda v: 0.0 <= v < 1.0, 'in [0, 1) (0 turns it off)'),
)

PRESETS = {p.name: p for p in (
    Preset('none', 'no augmentation', host.no_transforms, device.identity),
    Preset('flip', 'horizontal and vertical flips, p=0.5 each', host.flips, device.flips),
    Preset('crop', 'resize to 1.25x, random crop back, one of the two flips (p=0.5)',
           host.scaled_crop, device.scaled_crop),
    Preset('flip_bright', 'the flips plus brightness +-0.25 (p=0.5)', host.flips_brightness,
           device.flips_brightness),
    Preset('strong', 'random resized crop, flips, 90-degree rotations, colour jitter (the device '
           'version without hue)', host.strong, device.strong, STRONG_KNOBS),
    Preset('custom', 'Albumentations transforms written in augment.custom (host only)',
           host.custom, None,
           (Knob('custom', '', "for preset=custom: 'HorizontalFlip(p=0.5); RandomRotate90(p=0.5)'",
                 lambda v: isinstance(v, str) and len(v) <= MAX_CUSTOM_CHARS,
                 f'a string of at most {MAX_CUSTOM_CHARS:,} characters'),)),
)}
DEVICE_PRESETS = tuple(name for name, p in PRESETS.items() if p.device is not None)


def all_knobs() -> list[Knob]:
  """Every preset's knobs, each once (the config holds one field per knob)."""
  return [k for p in PRESETS.values() for k in p.knobs]


@dataclasses.dataclass(frozen=True)
class Spec:
  """What to apply: a preset and its knob values, hashable (static under jit)."""
  preset: str
  knobs: tuple[tuple[str, Any], ...] = ()

  def __getitem__(self, name: str):
    for key, value in self.knobs:
      if key == name:
        return value
    raise KeyError(f'preset {self.preset!r} has no knob {name!r} (its knobs: '
                   f'{[k for k, _ in self.knobs]})')


def make_spec(preset: str, **knobs) -> Spec:
  """A Spec with exactly the preset's knobs (no defaults filled in: every knob must be given)."""
  if preset not in PRESETS:
    raise ValueError(f'augment.preset: {preset!r} is not one of {tuple(PRESETS)}')
  names = [k.name for k in PRESETS[preset].knobs]
  if sorted(knobs) != sorted(names):
    raise ValueError(f'preset {preset!r} takes the knobs {names}, got {sorted(knobs)}')
  return Spec(preset, tuple((name, knobs[name]) for name in names))


def spec_with_defaults(preset: str) -> Spec:
  """The preset with its knobs at this table's defaults (the values base_config() holds)."""
  return make_spec(preset, **{k.name: k.default for k in PRESETS[preset].knobs})


def spec_from_config(augment_config) -> Spec:
  """The configured preset with its knob values from the config."""
  preset = PRESETS[augment_config.preset]
  return make_spec(preset.name, **{k.name: augment_config[k.name] for k in preset.knobs})


def device_spec(augment_config) -> Spec | None:
  """The Spec the train step applies (augment.where=device), or None when there is nothing to do
  on the device (host path, or preset none)."""
  if augment_config.where != 'device' or augment_config.preset == 'none':
    return None
  return spec_from_config(augment_config)


def host_pipeline(spec: Spec, image_size: int):
  """An A.Compose of the preset's transforms, or None when there is nothing to apply."""
  transforms = PRESETS[spec.preset].host(spec, image_size)
  return host.compose(transforms) if transforms else None


def host_augmenter(augment_config, image_size: int) -> host.HostAugmenter | None:
  """The per-example seeded augmenter of the configured preset (None for no transforms)."""
  compose = host_pipeline(spec_from_config(augment_config), image_size)
  return host.HostAugmenter(compose, image_size) if compose else None


def augment_on_device(key, images, spec: Spec):
  """uint8 [N, H, W, 3] -> augmented float32 [N, H, W, 3] in [0, 1], inside jit."""
  preset = PRESETS[spec.preset]
  if preset.device is None:
    raise ValueError(f'augment.preset={spec.preset!r} has no device implementation; device '
                     f'presets: {DEVICE_PRESETS} (use augment.where=host)')
  return preset.device(key, pixels.to_unit_range(images, jnp.float32), spec)
