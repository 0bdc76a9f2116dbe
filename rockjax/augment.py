"""Host-side augmentation with Albumentations 2.0.x (MIT), applied in numpy to one uint8 image.

Presets (`config.augment.preset`) are the reference's three recipes, `none`, and `strong` (random
resized crops, flips, 90-degree rotations and colour jitter, each part with its own knob); `custom`
takes a list of Albumentations transforms written in the config, e.g.
`--config.augment.custom="HorizontalFlip(p=0.5); RandomRotate90(p=0.5); ColorJitter(hue=0.05)"`.
`HostAugmenter` applies a pipeline with a per-example seed, so results do not depend on thread
scheduling when tf.data maps it in parallel.
"""

from __future__ import annotations

import ast
import copy
import importlib.metadata
import os
import random
import threading

import numpy as np

os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')  # never phone home: runs must work offline


def _refuse_albumentationsx() -> None:
  """AlbumentationsX (AGPL/commercial) also installs as `import albumentations`: refuse it."""
  names = {(d.metadata['Name'] or '').lower() for d in importlib.metadata.distributions()}
  if 'albumentationsx' in names:
    raise ImportError(
        'The albumentationsx distribution is installed. It is AGPL-3.0/commercial and shadows '
        'the MIT-licensed albumentations 2.0.8 that rockjax pins. Run '
        '`pip uninstall albumentationsx && pip install albumentations==2.0.8`.')


_refuse_albumentationsx()

import albumentations as A  # noqa: E402
import cv2  # noqa: E402

cv2.setNumThreads(0)  # tf.data already parallelises across examples

PRESETS = ('none', 'flip', 'crop', 'flip_bright', 'strong', 'custom')


def strong_transforms(image_size: int, crop_min_scale: float, rotate90: bool,
                      colour_jitter: float) -> list:
  """The `strong` preset for real photos: random resized crops, flips, 90-degree rotations, colour.

  Each part has its own config knob (augment.crop_min_scale, augment.rotate90,
  augment.colour_jitter), so an ablation can drop one at a time; the preset's values are
  configlib.base_config()'s.
  """
  transforms = []
  if crop_min_scale < 1.0:
    transforms.append(A.RandomResizedCrop(size=(image_size, image_size),
                                          scale=(crop_min_scale, 1.0), ratio=(0.75, 4 / 3)))
  transforms += [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)]
  if rotate90:
    transforms.append(A.RandomRotate90(p=0.5))
  if colour_jitter > 0:
    transforms.append(A.ColorJitter(brightness=colour_jitter, contrast=colour_jitter,
                                    saturation=colour_jitter, hue=colour_jitter / 10, p=0.8))
  return transforms


def preset_transforms(preset: str, image_size: int, augment_config=None) -> list:
  """The transforms of a named preset.

  `augment_config` supplies the strong preset's knobs; None means configlib.base_config()'s.
  """
  flips = [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)]
  if preset == 'none':
    return []
  if preset == 'flip':
    return flips
  if preset == 'crop':
    big = int(round(1.25 * image_size))
    return [A.Resize(big, big), A.RandomCrop(image_size, image_size),
            A.OneOf([A.HorizontalFlip(p=1.0), A.VerticalFlip(p=1.0)], p=0.5)]
  if preset == 'flip_bright':
    return flips + [A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.0, p=0.5)]
  if preset == 'strong':
    if augment_config is None:
      from rockjax import configlib  # local import: configlib imports this module lazily
      augment_config = configlib.base_config().augment
    return strong_transforms(image_size, augment_config.crop_min_scale, augment_config.rotate90,
                             augment_config.colour_jitter)
  raise ValueError(f'preset: {preset!r} is not one of {PRESETS}')


def parse_custom(spec: str) -> list:
  """Parses 'Name(kw=literal, ...); Name2(...)' into Albumentations transforms.

  Only names of Albumentations transforms and Python literals are accepted; nothing is evaluated.
  """
  transforms = []
  for part in (p.strip() for p in spec.replace('\n', ';').split(';')):
    if not part:
      continue
    node = ast.parse(part, mode='eval').body
    if isinstance(node, ast.Name):
      node = ast.Call(func=node, args=[], keywords=[])
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args):
      raise ValueError(f'custom: {part!r} must look like TransformName(key=value, ...)')
    name = node.func.id
    cls = getattr(A, name, None)
    if not (isinstance(cls, type) and issubclass(cls, A.BasicTransform)):
      raise ValueError(f'custom: {name!r} is not an Albumentations transform')
    try:
      kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    except ValueError as e:
      raise ValueError(f'custom: {part!r}: arguments must be Python literals ({e})') from e
    try:
      transforms.append(cls(**kwargs))
    except Exception as e:  # Albumentations validates arguments with pydantic
      raise ValueError(f'custom: {name}({kwargs}) was rejected: {e}') from e
  if not transforms:
    raise ValueError('custom: preset=custom needs at least one transform in augment.custom')
  return transforms


def build_host_pipeline(augment_config, image_size: int) -> A.Compose | None:
  """An A.Compose for the configured preset, or None when there is nothing to apply."""
  preset = augment_config.preset
  if preset == 'custom':
    transforms = parse_custom(augment_config.custom)
  else:
    transforms = preset_transforms(preset, image_size, augment_config)
  if not transforms:
    return None
  return A.Compose(transforms)


class HostAugmenter:
  """Applies an A.Compose to one HWC uint8 image, reproducibly for a given per-example seed.

  Albumentations transforms keep their random generator as state, so each thread gets its own copy
  of the pipeline, re-seeded for every example.
  """

  def __init__(self, compose: A.Compose, image_size: int):
    self._compose = compose
    self._image_size = image_size
    self._local = threading.local()

  def _pipeline(self) -> A.Compose:
    pipeline = getattr(self._local, 'pipeline', None)
    if pipeline is None:
      pipeline = self._local.pipeline = copy.deepcopy(self._compose)
    return pipeline

  def __call__(self, image: np.ndarray, seed: int) -> np.ndarray:
    pipeline = self._pipeline()
    # One generator shared by all transforms, drawn in sequence. (Compose.set_random_seed would give
    # every transform its own generator with the *same* seed: two p=0.5 flips would always agree.)
    pipeline.set_random_state(np.random.default_rng(int(seed)), random.Random(int(seed)))
    out = pipeline(image=image)['image']
    if out.shape != image.shape:
      # Transforms that change the size (e.g. a custom crop) are resized back to the model's input.
      out = cv2.resize(out, (self._image_size, self._image_size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(out, dtype=np.uint8)
