"""Pixel scaling shared by the models and the in-step augmentation (the lowest layer of the step
path: it imports nothing of rockjax)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp


def to_unit_range(images: jnp.ndarray, dtype: Any) -> jnp.ndarray:
  """uint8 images become floats in [0, 1]; float images are taken as already scaled."""
  if jnp.issubdtype(images.dtype, jnp.integer):
    return images.astype(dtype) / 255.0
  return images.astype(dtype)
