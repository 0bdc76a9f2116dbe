"""`--mode=preview`: a PNG grid of training images of every class, original and augmented.

It shows exactly what the configured `augment` section does to the model's inputs (same size, same
pipeline, same per-example seeding as training), so a recipe can be checked by eye before a run.
"""

from __future__ import annotations

import os

import numpy as np
from absl import logging

from rockjax import augment, data, device_augment, plots


def _device_augmenter(spec):
  """The device path, one image at a time, as uint8 (for display)."""
  import jax

  def apply(image, seed):
    out = device_augment.augment_batch(jax.random.PRNGKey(seed), image[None], spec)[0]
    return np.asarray(np.clip(np.asarray(out) * 255.0 + 0.5, 0, 255), np.uint8)
  return apply


def write_augmentation_preview(config, path: str, per_class: int = 2, versions: int = 5) -> str:
  dataset = data.load_dataset(config)
  train = dataset.train
  if config.augment.where == 'device':
    spec = device_augment.spec_from_config(config.augment)
    augmenter = _device_augmenter(spec) if spec else None
  else:
    compose = augment.build_host_pipeline(config.augment, config.data.image_size)
    augmenter = augment.HostAugmenter(compose, config.data.image_size) if compose else None
  rng = np.random.default_rng(config.seed)
  originals, labels, augmented = [], [], []
  for label, name in enumerate(dataset.class_names):
    members = np.flatnonzero(train.labels == label)
    for i in rng.choice(members, size=min(per_class, len(members)), replace=False):
      originals.append(train.images[i])
      labels.append(name)
      augmented.append([augmenter(train.images[i], int(rng.integers(2**31))) if augmenter
                        else train.images[i] for _ in range(versions)])
  plots.augmentation_preview(originals, labels, augmented, path, config.augment.preset)
  logging.info('Wrote the augmentation preview (%s) to %s.', config.augment.preset, path)
  return os.path.abspath(path)
