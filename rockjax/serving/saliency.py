"""Where the network looks: class activation maps over the photo (Grad-CAM).

Every rockjax network ends in global average pooling and one linear classifier, so Grad-CAM's
weights for class c (the class score's gradient, averaged over each channel of the last feature
map A) are the classifier's own weights W[:, c] divided by the map's area, and the map is
ReLU(sum_k W[k, c] A_k), scaled to [0, 1] (Grad-CAM, Selvaraju et al. 2017, reduces here to the
CAM of Zhou et al. 2016; tests/serving/test_saliency.py checks it against autodiff). With
model.head_blocks the classifier also reads earlier blocks' pooled outputs, in the rows after the
map's, and the map shows the last layer's share of the score. It is as
coarse as that last feature map (9x9 for EfficientNet-Lite0 at 288 px, 4x4 for the 32 px residual
CNN) and is stretched over the photo bilinearly. The map of the predicted class is drawn in red over
the photo: `--mode=eval` for its most confident errors (`eval/most_confident_errors_explained.png`),
`--mode=predict --config.predict.explain=True` for every photo predicted (`explained/`).
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from rockjax.models.layers import HEAD, MAP


@functools.lru_cache(maxsize=8)
def _map_fn(apply):
  return jax.jit(lambda variables, images: apply(variables, images, train=False, features=MAP))


def class_maps(predictor, images: np.ndarray, classes=None, batch_size: int = 64) -> np.ndarray:
  """[N, H, W] maps in [0, 1] (H, W: the images'), of `classes` (default: each image's predicted
  class), from the predictor's weights (the image itself, not its mirror image)."""
  images = np.asarray(images)
  variables = {'params': predictor.variables['params'],
               'batch_stats': predictor.variables.get('batch_stats', {})}
  kernel = np.asarray(predictor.variables['params'][HEAD]['kernel'], np.float32)  # [C, K]
  if classes is None:
    classes = predictor.probabilities(images).argmax(axis=1)
  out = []
  for start in range(0, len(images), batch_size):
    chunk = images[start:start + batch_size]
    fmap = np.asarray(_map_fn(predictor.model.apply)(variables, chunk), np.float32)
    # The map's own rows: a classifier that also reads earlier blocks' pooled features
    # (model.head_blocks) has them after these, and the map is of the last layer's share.
    weights = kernel[:fmap.shape[-1], np.asarray(classes[start:start + batch_size])].T  # [n, C]
    cam = np.maximum(np.einsum('nhwc,nc->nhw', fmap, weights), 0.0)
    cam /= np.maximum(cam.max(axis=(1, 2), keepdims=True), 1e-12)
    out.append(np.asarray(jax.image.resize(jnp.asarray(cam), (len(cam),) + images.shape[1:3],
                                           'bilinear')))
  return np.clip(np.concatenate(out), 0.0, 1.0) if out else np.zeros(images.shape[:3])


def overlay(image: np.ndarray, cam: np.ndarray, strength: float = 0.6) -> np.ndarray:
  """The photo, greyed, with the map in red on top (uint8 RGB)."""
  grey = np.asarray(image, np.float32).mean(axis=-1, keepdims=True) * np.ones((1, 1, 3))
  red = np.zeros_like(grey)
  red[..., 0] = 255.0
  alpha = strength * cam[..., None]
  return np.clip((1 - alpha) * grey + alpha * red, 0, 255).astype(np.uint8)


def write_overlays(predictor, images: np.ndarray, names: list[str], out: str,
                   classes=None) -> list[str]:
  """One PNG per image in `out`: the photo and its map side by side; the written paths."""
  os.makedirs(out, exist_ok=True)
  cams = class_maps(predictor, images, classes)
  paths = []
  for i, (image, cam, name) in enumerate(zip(images, cams, names)):
    stem = os.path.splitext(os.path.basename(name))[0][:60] or 'image'
    path = os.path.join(out, f'{i:04d}_{stem}.png')
    Image.fromarray(np.concatenate([np.asarray(image, np.uint8), overlay(image, cam)], axis=1)
                    ).save(path)
    paths.append(path)
  return paths
