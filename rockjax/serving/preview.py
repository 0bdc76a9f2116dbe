"""`--mode=preview`: a PNG grid of training images of every class, original and augmented.

It shows exactly what the configured `augment` section does to the model's inputs (same size, same
preset implementation, same per-example seeding as training), so a recipe can be checked by eye
before a run.
"""

from __future__ import annotations

import os

import numpy as np
from absl import logging

from rockjax import plots
from rockjax.augment import presets
from rockjax.data import dataset as datasets


def _device_augmenter(spec: presets.Spec):
  """The device path, one image at a time, as uint8 (for display)."""
  import jax

  def apply(image, seed):
    out = presets.augment_on_device(jax.random.PRNGKey(seed), image[None], spec)[0]
    return np.asarray(np.clip(np.asarray(out) * 255.0 + 0.5, 0, 255), np.uint8)
  return apply


def augmenter(config):
  """(uint8 image, seed) -> augmented uint8 image, by the configured path; None: no transforms."""
  if config.augment.where == 'device':
    spec = presets.device_spec(config.augment)
    return _device_augmenter(spec) if spec else None
  return presets.host_augmenter(config.augment, config.data.image_size)


def write_augmentation_preview(config, path: str, per_class: int = 2, versions: int = 5) -> str:
  dataset = datasets.load_dataset(config)
  train = dataset.train
  augment = augmenter(config)
  rng = np.random.default_rng(config.seed)
  originals, labels, augmented = [], [], []
  for label, name in enumerate(dataset.class_names):
    members = np.flatnonzero(train.labels == label)
    for i in rng.choice(members, size=min(per_class, len(members)), replace=False):
      originals.append(train.images[i])
      labels.append(name)
      augmented.append([augment(train.images[i], int(rng.integers(2**31))) if augment
                        else train.images[i] for _ in range(versions)])
  plots.augmentation_preview(originals, labels, augmented, path, config.augment.preset)
  logging.info('Wrote the augmentation preview (%s) to %s.', config.augment.preset, path)
  return os.path.abspath(path)
