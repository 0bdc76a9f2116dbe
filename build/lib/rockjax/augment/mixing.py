"""Mixup and CutMix inside the compiled train step: pairs of examples blended, labels blended alike.

`mix_batch` pairs each example of this device's share of the batch with a randomly permuted partner
and draws one mixing weight `lam ~ Beta(alpha, alpha)` for the share:
- mixup: image = lam * a + (1 - lam) * b;
- cutmix: a box of area fraction ~(1 - lam) is cut from b and pasted onto a; `lam` is then
  recomputed from the pixels that really stayed a's (the box is clipped at the image border).
The targets are `lam * onehot(a) + (1 - lam) * onehot(b)`. With both alphas set, each step uses one
of the two with probability 0.5. Pairs are drawn within one device's share, so (unlike the rest of
the step) results depend on how the global batch is split over devices.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rockjax.pixels import to_unit_range


def enabled(mixup_alpha: float, cutmix_alpha: float) -> bool:
  return mixup_alpha > 0 or cutmix_alpha > 0


def cutmix_box(key: jax.Array, lam: jnp.ndarray, height: int, width: int) -> jnp.ndarray:
  """A [H, W] boolean mask of a box covering about (1 - lam) of the image, centre uniform."""
  ky, kx = jax.random.split(key)
  cut = jnp.sqrt(1.0 - lam)
  box_h, box_w = cut * height, cut * width
  cy = jax.random.uniform(ky, (), maxval=height)
  cx = jax.random.uniform(kx, (), maxval=width)
  y0 = jnp.clip(jnp.round(cy - box_h / 2), 0, height)
  y1 = jnp.clip(jnp.round(cy + box_h / 2), 0, height)
  x0 = jnp.clip(jnp.round(cx - box_w / 2), 0, width)
  x1 = jnp.clip(jnp.round(cx + box_w / 2), 0, width)
  ys = jnp.arange(height)[:, None]
  xs = jnp.arange(width)[None, :]
  return (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)


def mix_batch(key: jax.Array, images: jnp.ndarray, labels: jnp.ndarray, num_classes: int,
              mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0):
  """(images [N, H, W, C], int labels [N]) -> (float images in [0, 1], soft targets [N, K], lam)."""
  x = to_unit_range(images, jnp.float32)
  targets = jax.nn.one_hot(labels, num_classes)
  if not enabled(mixup_alpha, cutmix_alpha):
    return x, targets, jnp.ones((), jnp.float32)
  k_perm, k_choice, k_mix, k_cut, k_box = jax.random.split(key, 5)
  perm = jax.random.permutation(k_perm, x.shape[0])
  x_b, t_b = x[perm], targets[perm]
  _, h, w, _ = x.shape

  # Both are one blend, mixed = weight * a + (1 - weight) * b, with a per-pixel weight map: the
  # scalar lam for mixup, 0 inside the box and 1 outside for cutmix (exact copies of a or b). With
  # both alphas set, the step draws which map to use, so the batch is blended once either way.
  if mixup_alpha > 0:
    lam_m = jax.random.beta(k_mix, mixup_alpha, mixup_alpha).astype(jnp.float32)
  if cutmix_alpha > 0:
    box = cutmix_box(k_box, jax.random.beta(k_cut, cutmix_alpha, cutmix_alpha), h, w)
    keep_c = 1.0 - box.astype(jnp.float32)  # [H, W]: 1 where the pixel stays the first image's
    lam_c = keep_c.mean()  # the fraction really kept (the box is clipped at the border)
  if mixup_alpha > 0 and cutmix_alpha > 0:
    use_cutmix = jax.random.bernoulli(k_choice, 0.5)
    weight = jnp.where(use_cutmix, keep_c, lam_m)
    lam = jnp.where(use_cutmix, lam_c, lam_m)
  elif mixup_alpha > 0:
    weight, lam = lam_m, lam_m
  else:
    weight, lam = keep_c, lam_c
  weight = jnp.reshape(weight, (1, h, w, 1)) if jnp.ndim(weight) else weight
  mixed = weight * x + (1.0 - weight) * x_b
  return mixed, lam * targets + (1.0 - lam) * t_b, lam
