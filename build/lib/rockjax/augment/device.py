"""Augmentation inside the compiled train step (`augment.where='device'`), with jax.random.

The host path (rockjax/augment/host.py: Albumentations per example in tf.data) is the reference; on
a small CPU it feeds only ~1-2x the images/s the train step consumes. This path draws the same kinds
of transforms, per example, from the step's own key, so the input pipeline only gathers uint8
batches. One function per preset (the table in rockjax/augment/presets.py names them), each taking
float images in [0, 1], a key and the preset's `Spec`: flips (p=0.5 each), crop (resize to 1.25x,
random crop, one of the two flips with p=0.5), flip_bright (flips, brightness +-0.25 with p=0.5),
and strong (random resized crop with ratio 3/4-4/3, flips, 90-degree rotations, brightness,
contrast and saturation jitter with p=0.8; hue jitter is left out).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _where(mask, a, b):
  return jnp.where(mask[:, None, None, None], a, b)


def _flips(key, x, p=0.5):
  kh, kv = jax.random.split(key)
  n = x.shape[0]
  x = _where(jax.random.bernoulli(kh, p, (n,)), x[:, :, ::-1], x)
  return _where(jax.random.bernoulli(kv, p, (n,)), x[:, ::-1], x)


def _brightness(key, x, limit=0.25, p=0.5):
  ka, kb = jax.random.split(key)
  n = x.shape[0]
  delta = jax.random.uniform(kb, (n,), minval=-limit, maxval=limit)
  apply = jax.random.bernoulli(ka, p, (n,))
  return jnp.clip(x + jnp.where(apply, delta, 0.0)[:, None, None, None], 0.0, 1.0)


def _crop_scaled(key, x):
  """Resize to 1.25x (bilinear), then a random crop back to the input size."""
  n, h, w, c = x.shape
  big_h, big_w = int(round(1.25 * h)), int(round(1.25 * w))
  big = jax.image.resize(x, (n, big_h, big_w, c), 'bilinear')
  ky, kx = jax.random.split(key)
  ys = jax.random.randint(ky, (n,), 0, big_h - h + 1)
  xs = jax.random.randint(kx, (n,), 0, big_w - w + 1)
  return jax.vmap(lambda im, y0, x0: jax.lax.dynamic_slice(im, (y0, x0, 0), (h, w, c)))(big, ys, xs)


def _one_flip(key, x, p=0.5):
  ka, kw = jax.random.split(key)
  n = x.shape[0]
  apply = jax.random.bernoulli(ka, p, (n,))
  horizontal = jax.random.bernoulli(kw, 0.5, (n,))
  flipped = _where(horizontal, x[:, :, ::-1], x[:, ::-1])
  return _where(apply, flipped, x)


def _random_resized_crop(key, x, scale, ratio=(3 / 4, 4 / 3)):
  n, h, w, c = x.shape
  ks, kr, ky, kx = jax.random.split(key, 4)
  area = jax.random.uniform(ks, (n,), minval=scale[0], maxval=scale[1]) * h * w
  log_r = jax.random.uniform(kr, (n,), minval=jnp.log(ratio[0]), maxval=jnp.log(ratio[1]))
  r = jnp.exp(log_r)
  cw = jnp.clip(jnp.sqrt(area * r), 1.0, w)
  ch = jnp.clip(jnp.sqrt(area / r), 1.0, h)
  y0 = jax.random.uniform(ky, (n,)) * (h - ch)
  x0 = jax.random.uniform(kx, (n,)) * (w - cw)

  def one(im, y0, x0, ch, cw):
    sy, sx = h / ch, w / cw
    return jax.image.scale_and_translate(im, (h, w, c), (0, 1), jnp.array([sy, sx]),
                                         jnp.array([-y0 * sy, -x0 * sx]), 'linear')
  return jax.vmap(one)(x, y0, x0, ch, cw)


def _rot90(key, x):
  """A uniformly drawn multiple of 90 degrees (square images), as RandomRotate90 when applied."""
  ka, kk = jax.random.split(key)
  n = x.shape[0]
  k = jnp.where(jax.random.bernoulli(ka, 0.5, (n,)), jax.random.randint(kk, (n,), 0, 4), 0)
  rots = [x, jnp.rot90(x, 1, axes=(1, 2)), jnp.rot90(x, 2, axes=(1, 2)),
          jnp.rot90(x, 3, axes=(1, 2))]
  out = rots[0]
  for i in range(1, 4):
    out = _where(k == i, rots[i], out)
  return out


def _colour_jitter(key, x, amount, p=0.8):
  ka, kb, kc, ks = jax.random.split(key, 4)
  n = x.shape[0]
  apply = jax.random.bernoulli(ka, p, (n,))[:, None, None, None]
  factor = lambda k: jax.random.uniform(k, (n, 1, 1, 1), minval=1 - amount, maxval=1 + amount)
  y = x * factor(kb)
  mean = y.mean(axis=(1, 2, 3), keepdims=True)
  y = (y - mean) * factor(kc) + mean
  grey = y.mean(axis=3, keepdims=True)
  y = (y - grey) * factor(ks) + grey
  return jnp.where(apply, jnp.clip(y, 0.0, 1.0), x)


# The presets. Each splits its key in four, so that a part keeps its random draws whichever
# other parts a preset (or its knobs) turns on.

def identity(key, x, spec):
  return x


def flips(key, x, spec):
  k1, _, _, _ = jax.random.split(key, 4)
  return _flips(k1, x)


def flips_brightness(key, x, spec):
  k1, k2, _, _ = jax.random.split(key, 4)
  return _brightness(k2, _flips(k1, x))


def scaled_crop(key, x, spec):
  k1, k2, _, _ = jax.random.split(key, 4)
  return _one_flip(k2, _crop_scaled(k1, x))


def strong(key, x, spec):
  k1, k2, k3, k4 = jax.random.split(key, 4)
  if spec['crop_min_scale'] < 1.0:
    x = _random_resized_crop(k1, x, scale=(spec['crop_min_scale'], 1.0))
  x = _flips(k2, x)
  if spec['rotate90']:
    x = _rot90(k3, x)
  amount = spec['colour_jitter']
  return _colour_jitter(k4, x, amount=amount) if amount > 0 else x
