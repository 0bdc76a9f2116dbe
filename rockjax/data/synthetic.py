"""The project's own default data: procedural rock-like textures in four classes.

Real photos cannot be downloaded on a fresh offline machine, so `python main.py` trains on textures
generated here: granite (speckled mineral grains), basalt (dark fine grain with vesicles), sandstone
(warped layered bands) and marble (light ground with meandering veins). Every image draws its colours,
grain scale, rotation, lighting and noise at random, with palettes that overlap between classes, so
the task is not separable from colour alone at 32x32.

OpenCV is imported when a set is generated, not with this module.

`ensure_dataset(...)` writes the set once as an image folder (one sub-folder of PNGs per class) in a
cache directory and returns its path; the trainer then reads it exactly like a user's photo folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile

import numpy as np
from PIL import Image

CLASSES = ('basalt', 'granite', 'marble', 'sandstone')
GENERATOR_VERSION = 2


def _smooth_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
  """Zero-mean, unit-variance value noise with features about `scale` pixels wide."""
  import cv2
  cells = max(2, int(round(size / max(scale, 1.0))))
  coarse = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
  field = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
  return (field - field.mean()) / (field.std() + 1e-6)


def _fractal_noise(rng: np.random.Generator, size: int, scale: float, octaves: int = 3) -> np.ndarray:
  total = np.zeros((size, size), np.float32)
  for o in range(octaves):
    total += _smooth_noise(rng, size, scale / 2 ** o) / 2 ** o
  return total / total.std()


# Colours shared by all classes (so colour alone says little about the class), with each class's
# preference among them: dark, mid grey, light grey, white, tan, pink, reddish brown, greenish grey.
_ROCK_COLOURS = np.asarray([
    (0.18, 0.18, 0.2), (0.45, 0.45, 0.47), (0.68, 0.68, 0.68), (0.86, 0.85, 0.83),
    (0.72, 0.6, 0.45), (0.8, 0.62, 0.6), (0.55, 0.35, 0.28), (0.45, 0.5, 0.42)], np.float32)
_PREFERENCES = {
    'basalt': (4, 3, 2, 1, 1, 1, 1, 2),
    'granite': (2, 3, 3, 2, 1, 2, 1, 1),
    'marble': (1, 2, 3, 4, 2, 2, 1, 2),
    'sandstone': (1, 2, 2, 1, 4, 2, 3, 1),
}


def _rock_colour(rng: np.random.Generator, class_name: str, spread: float = 0.08) -> np.ndarray:
  """A colour from the shared rock palette (weighted by the class's preference), jittered."""
  weights = np.asarray(_PREFERENCES[class_name], np.float64)
  base = _ROCK_COLOURS[rng.choice(len(_ROCK_COLOURS), p=weights / weights.sum())]
  colour = base + rng.normal(0, spread) + rng.normal(0, spread / 3, 3)
  return np.clip(colour, 0, 1).astype(np.float32)


def _granite(rng: np.random.Generator, size: int) -> np.ndarray:
  import cv2
  grain = rng.uniform(1.5, 4.0)
  palette = [_rock_colour(rng, 'granite') for _ in range(3)] + [_ROCK_COLOURS[0]]
  weights = np.log(rng.dirichlet(np.ones(len(palette)) * 3.0))
  # Each mineral claims the pixels where its own smooth noise field is highest: irregular grains.
  fields = np.stack([_smooth_noise(rng, size, grain) + w for w in weights])
  img = np.stack(palette)[np.argmax(fields, axis=0)]
  return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.8))


def _basalt(rng: np.random.Generator, size: int) -> np.ndarray:
  base = _rock_colour(rng, 'basalt')
  texture = _fractal_noise(rng, size, rng.uniform(1.0, 3.0))[..., None]
  img = base + rng.uniform(0.03, 0.1) * texture
  yy, xx = np.mgrid[:size, :size]
  for _ in range(rng.integers(0, 12)):
    r = rng.uniform(0.8, size / 10)
    cx, cy = rng.uniform(0, size, 2)
    d = np.hypot(xx - cx, (yy - cy) * rng.uniform(0.6, 1.4))
    img = np.where((d < r)[..., None], img * rng.uniform(0.2, 0.5), img)
    img = np.where(((d >= r) & (d < r + 0.8))[..., None], img * 1.25, img)
  return img


def _sandstone(rng: np.random.Generator, size: int) -> np.ndarray:
  yy, xx = np.mgrid[:size, :size].astype(np.float32) / size
  warp = _fractal_noise(rng, size, size / rng.uniform(1.5, 4.0)) * rng.uniform(0.02, 0.12)
  freq = rng.uniform(3.0, 12.0)
  bands = np.sin(2 * np.pi * freq * (yy + warp) + rng.uniform(0, 2 * np.pi))
  bands += 0.5 * np.sin(2 * np.pi * freq * 2.7 * (yy + warp))
  c1 = _rock_colour(rng, 'sandstone')
  c2 = np.clip(c1 * rng.uniform(0.55, 0.9) + rng.normal(0, 0.04, 3), 0, 1)
  t = ((bands - bands.min()) / (np.ptp(bands) + 1e-6))[..., None]
  img = c1 * t + c2 * (1 - t)
  return img + 0.05 * _fractal_noise(rng, size, 1.2)[..., None]


def _marble(rng: np.random.Generator, size: int) -> np.ndarray:
  yy, xx = np.mgrid[:size, :size].astype(np.float32) / size
  turbulence = _fractal_noise(rng, size, size / rng.uniform(1.5, 3.5), octaves=4)
  freq = rng.uniform(1.0, 4.0)
  phase = 2 * np.pi * freq * (xx + yy * rng.uniform(-1, 1)) + rng.uniform(2.0, 5.0) * turbulence
  width = rng.uniform(0.04, 0.25)
  veins = np.exp(-(np.abs(np.sin(phase)) / width) ** 2)[..., None]
  ground = _rock_colour(rng, 'marble')
  vein = np.clip(ground * rng.uniform(0.3, 0.7) + rng.normal(0, 0.05, 3), 0, 1)
  img = ground * (1 - veins) + vein * veins
  return img + 0.03 * _fractal_noise(rng, size, 3.0)[..., None]


_GENERATORS = {'basalt': _basalt, 'granite': _granite, 'marble': _marble,
               'sandstone': _sandstone}


def _nuisance(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
  """Class-independent variation: rotation, tint, lighting gradient, contrast, sensor noise."""
  import cv2
  size = img.shape[0]
  m = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(0, 360), rng.uniform(1.0, 1.4))
  img = cv2.warpAffine(img, m, (size, size), borderMode=cv2.BORDER_REFLECT)
  img = img * rng.uniform(0.88, 1.12, 3).astype(np.float32)  # white balance / tint
  yy, xx = np.mgrid[:size, :size].astype(np.float32) / size
  angle = rng.uniform(0, 2 * np.pi)
  light = 1 + rng.uniform(0, 0.5) * ((xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle))
  img = img * light[..., None]
  mean = img.mean()
  img = (img - mean) * rng.uniform(0.6, 1.3) + mean * rng.uniform(0.7, 1.2)
  img = img + rng.normal(0, rng.uniform(0.01, 0.08), img.shape).astype(np.float32)
  return np.clip(img * 255, 0, 255).astype(np.uint8)


def make_image(class_name: str, rng: np.random.Generator, size: int) -> np.ndarray:
  """One HxWx3 uint8 texture of the given class."""
  return _nuisance(rng, _GENERATORS[class_name](rng, size).astype(np.float32))


def dataset_key(num_per_class: int, image_size: int, seed: int) -> str:
  spec = dict(version=GENERATOR_VERSION, num_per_class=num_per_class, image_size=image_size,
              seed=seed, classes=CLASSES)
  return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def write_dataset(root: str, num_per_class: int, image_size: int, seed: int) -> None:
  """Writes `num_per_class` PNGs per class into root/<class>/ (root must not exist yet)."""
  for label, name in enumerate(CLASSES):
    os.makedirs(os.path.join(root, name))
    for i in range(num_per_class):
      rng = np.random.default_rng([seed, label, i])
      Image.fromarray(make_image(name, rng, image_size)).save(
          os.path.join(root, name, f'{name}_{i:05d}.png'), compress_level=1)


def ensure_dataset(cache_dir: str, num_per_class: int, image_size: int, seed: int) -> str:
  """Returns the folder of the generated set, generating it first if it is not in the cache.

  The set is written to a temporary folder and renamed into place, so an interrupted generation
  never leaves a partial set behind.
  """
  root = os.path.join(cache_dir, 'synthetic', f'rocks4-{dataset_key(num_per_class, image_size, seed)}')
  if os.path.isdir(root):
    return root
  os.makedirs(os.path.dirname(root), exist_ok=True)
  tmp = tempfile.mkdtemp(prefix='.tmp-', dir=os.path.dirname(root))
  try:
    write_dataset(os.path.join(tmp, 'set'), num_per_class, image_size, seed)
    try:
      os.rename(os.path.join(tmp, 'set'), root)
    except OSError:
      if not os.path.isdir(root):  # another process may have finished first; otherwise re-raise
        raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return root
