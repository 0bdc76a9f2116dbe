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

from rockjax.models import to_unit_range


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

  def mixup():
    lam = jax.random.beta(k_mix, mixup_alpha, mixup_alpha)
    return lam * x + (1.0 - lam) * x_b, lam.astype(jnp.float32)

  def cutmix():
    lam = jax.random.beta(k_cut, cutmix_alpha, cutmix_alpha)
    box = cutmix_box(k_box, lam, h, w)
    kept = 1.0 - box.mean()  # the fraction of pixels still from the first image
    return jnp.where(box[None, :, :, None], x_b, x), kept.astype(jnp.float32)

  if mixup_alpha > 0 and cutmix_alpha > 0:
    # Both are computed and one kept. A lax.cond here was tried: the test suite then segfaulted
    # once while compiling this step under pmap (jaxlib 0.10.2, CPU); not isolated, so not kept.
    use_cutmix = jax.random.bernoulli(k_choice, 0.5)
    (mixed_m, lam_m), (mixed_c, lam_c) = mixup(), cutmix()
    mixed = jnp.where(use_cutmix, mixed_c, mixed_m)
    lam = jnp.where(use_cutmix, lam_c, lam_m)
  elif mixup_alpha > 0:
    mixed, lam = mixup()
  else:
    mixed, lam = cutmix()
  return mixed, lam * targets + (1.0 - lam) * t_b, lam
