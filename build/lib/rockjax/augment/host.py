"""Host-side augmentation with Albumentations 2.0.x (MIT), applied in numpy to one uint8 image.

One builder per preset (the table in rockjax/augment/presets.py names them): each takes the preset's
`Spec` and the image size and returns a list of Albumentations transforms. `custom` parses transforms
written in the config, e.g. `--config.augment.custom="HorizontalFlip(p=0.5); ColorJitter(hue=0.05)"`.
`HostAugmenter` applies a pipeline with a per-example seed, so results do not depend on thread
scheduling when tf.data maps it in parallel.

Albumentations and OpenCV are imported on first use (`albumentations()`), not with this module, so
code that only trains with device augmentation never loads them.
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib.metadata
import random
import threading

import numpy as np


@functools.cache
def albumentations():
  """The albumentations module (imported once; AlbumentationsX, AGPL/commercial, is refused)."""
  names = {(d.metadata['Name'] or '').lower() for d in importlib.metadata.distributions()}
  if 'albumentationsx' in names:
    raise ImportError(
        'The albumentationsx distribution is installed. It is AGPL-3.0/commercial and shadows '
        'the MIT-licensed albumentations 2.0.8 that rockjax pins. Run '
        '`pip uninstall albumentationsx && pip install albumentations==2.0.8`.')
  import albumentations as A
  import cv2
  cv2.setNumThreads(0)  # tf.data already parallelises across examples
  return A


def _flip_pair() -> list:
  A = albumentations()
  return [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)]


def no_transforms(spec, image_size: int) -> list:
  return []


def flips(spec, image_size: int) -> list:
  return _flip_pair()


def scaled_crop(spec, image_size: int) -> list:
  A = albumentations()
  big = int(round(1.25 * image_size))
  return [A.Resize(big, big), A.RandomCrop(image_size, image_size),
          A.OneOf([A.HorizontalFlip(p=1.0), A.VerticalFlip(p=1.0)], p=0.5)]


def flips_brightness(spec, image_size: int) -> list:
  A = albumentations()
  return _flip_pair() + [A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.0,
                                                    p=0.5)]


def strong(spec, image_size: int) -> list:
  """Random resized crops, flips, 90-degree rotations, colour jitter; each part has a knob."""
  A = albumentations()
  transforms = []
  if spec['crop_min_scale'] < 1.0:
    transforms.append(A.RandomResizedCrop(size=(image_size, image_size),
                                          scale=(spec['crop_min_scale'], 1.0),
                                          ratio=(0.75, 4 / 3)))
  transforms += _flip_pair()
  if spec['rotate90']:
    transforms.append(A.RandomRotate90(p=0.5))
  amount = spec['colour_jitter']
  if amount > 0:
    transforms.append(A.ColorJitter(brightness=amount, contrast=amount, saturation=amount,
                                    hue=amount / 10, p=0.8))
  return transforms


def custom(spec, image_size: int) -> list:
  return parse_custom(spec['custom'])


def parse_custom(text: str) -> list:
  """Parses 'Name(kw=literal, ...); Name2(...)' into Albumentations transforms.

  Only names of Albumentations transforms and Python literals are accepted; nothing is evaluated.
  """
  A = albumentations()
  transforms = []
  for part in (p.strip() for p in text.replace('\n', ';').split(';')):
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


def compose(transforms: list):
  return albumentations().Compose(transforms)


class HostAugmenter:
  """Applies an A.Compose to one HWC uint8 image, reproducibly for a given per-example seed.

  Albumentations transforms keep their random generator as state, so each thread gets its own copy
  of the pipeline, re-seeded for every example.
  """

  def __init__(self, pipeline, image_size: int):
    self._compose = pipeline
    self._image_size = image_size
    self._local = threading.local()

  def _pipeline(self):
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
      import cv2
      out = cv2.resize(out, (self._image_size, self._image_size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(out, dtype=np.uint8)
