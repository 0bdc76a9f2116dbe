"""Depthwise (one filter per channel) 'SAME' convolution, computed the way each backend runs fastest.

XLA:CPU runs a grouped convolution (`feature_group_count` = channels) very slowly: for a
16x56x56x96 batch and a 3x3 kernel, ~35x slower forward and ~6x slower gradients than the same
convolution written as k*k shifted multiply-adds (BENCHMARKS.md). GPUs and TPUs have fast
depthwise kernels. `impl`:
- 'xla': lax.conv_general_dilated with feature_group_count (the standard op; what export writes);
- 'shifted': the sum over the k*k kernel taps of a strided slice of the padded input times the tap;
- 'auto': 'shifted' on CPU, 'xla' elsewhere, chosen where the program is traced;
- 'platform': the same choice made where the program runs (lax.platform_dependent), for an
  export serialised for several platforms (the SavedModel: CPU and CUDA).
Both take TensorFlow's 'SAME' padding (as the pretrained weights were trained with: the extra row
and column go after) and an HWIO kernel of shape (k, k, 1, channels); they agree to rounding.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

DEPTHWISE_IMPLS = ('auto', 'xla', 'shifted', 'platform')  # model.depthwise_impl


def resolve(impl: str) -> str:
  if impl not in DEPTHWISE_IMPLS:
    raise ValueError(f'depthwise impl {impl!r} is not one of {DEPTHWISE_IMPLS}')
  if impl == 'auto' or impl == 'platform':  # 'platform' outside depthwise_conv: where traced
    return 'shifted' if jax.default_backend() == 'cpu' else 'xla'
  return impl


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """TensorFlow 'SAME': output ceil(size / stride); the odd padding pixel goes after."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def depthwise_conv(x: jnp.ndarray, kernel: jnp.ndarray, stride: int = 1,
                   impl: str = 'auto') -> jnp.ndarray:
  """NHWC `x` convolved channel by channel with `kernel` (k, k, 1, C), 'SAME', `stride`."""
  kh, kw, one, channels = kernel.shape
  if one != 1 or x.shape[-1] != channels:
    raise ValueError(f'a depthwise kernel for {x.shape[-1]} channels has shape (k, k, 1, '
                     f'{x.shape[-1]}), got {kernel.shape}')
  if impl == 'platform':
    return lax.platform_dependent(
        x, kernel, cpu=lambda x, k: depthwise_conv(x, k, stride, 'shifted'),
        default=lambda x, k: depthwise_conv(x, k, stride, 'xla'))
  if resolve(impl) == 'xla':
    return lax.conv_general_dilated(x, kernel, (stride, stride), 'SAME',
                                    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                    feature_group_count=channels)
  return _shifted(x, kernel, stride)


def _taps(xp: jnp.ndarray, kh: int, kw: int, stride: int, out_h: int, out_w: int):
  """The k*k strided slices of the padded input that the kernel taps multiply, in (i, j) order."""
  n, channels = xp.shape[0], xp.shape[-1]
  for i in range(kh):
    for j in range(kw):
      yield lax.slice(xp, (0, i, j, 0), (n, i + (out_h - 1) * stride + 1,
                                         j + (out_w - 1) * stride + 1, channels),
                      (1, stride, stride, 1))


def _padded(x: jnp.ndarray, kh: int, kw: int, stride: int):
  n, h, w, _ = x.shape
  (top, bottom), (left, right) = same_padding(h, kh, stride), same_padding(w, kw, stride)
  xp = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
  return xp, -(-h // stride), -(-w // stride)


def _weighted_taps(xp, kernel, stride: int, out_h: int, out_w: int):
  """The sum over the kernel's taps of each strided slice of `xp` times its tap: a 'valid'
  depthwise correlation of the already padded input."""
  kh, kw = kernel.shape[:2]
  y = None
  for t, tap in enumerate(_taps(xp, kh, kw, stride, out_h, out_w)):
    tap = tap * kernel[t // kw, t % kw, 0]
    y = tap if y is None else y + tap
  return y


def _shifted_forward(x, kernel, stride: int):
  xp, out_h, out_w = _padded(x, *kernel.shape[:2], stride)
  return _weighted_taps(xp, kernel, stride, out_h, out_w)


# The kernel gradient sums, for each tap, the input slice times the output gradient over the
# batch and the pixels. Read whole, XLA:CPU streams the two arrays from memory once per tap (25
# times for a 5x5 kernel); taken a few images at a time, they stay in the cache across the taps:
# 3.5x faster for a 32x9x9x1152 batch with a 5x5 kernel (docs/pretrained.md).
KERNEL_GRAD_BLOCK_BYTES = 1 << 22  # the most input + gradient bytes a block of images holds


def images_per_block(n: int, bytes_per_image: int, limit: int | None = None) -> int:
  """The largest divisor of the batch `n` whose images fit in `limit` bytes (at least 1;
  KERNEL_GRAD_BLOCK_BYTES by default)."""
  limit = KERNEL_GRAD_BLOCK_BYTES if limit is None else limit
  best = 1
  for m in range(1, n + 1):
    if n % m == 0 and m * bytes_per_image <= limit:
      best = m
  return best


def _kernel_gradient(x, dy, kernel_shape, stride: int):
  kh, kw, _, channels = kernel_shape
  xp, out_h, out_w = _padded(x, kh, kw, stride)

  def block_sums(block):
    xb, dyb = block
    return jnp.stack([jnp.sum(tap * dyb, axis=(0, 1, 2))
                      for tap in _taps(xb, kh, kw, stride, out_h, out_w)])

  n = x.shape[0]
  m = images_per_block(n, (xp[0].size + dy[0].size) * dy.dtype.itemsize)
  if m == n:
    sums = block_sums((xp, dy))
  else:  # a loop over the blocks adding into one total: 2% faster than stacking every block's
    # sums then adding them (the 288 px fine-tuning step, measured side by side)
    blocks = (xp.reshape(n // m, m, *xp.shape[1:]), dy.reshape(n // m, m, *dy.shape[1:]))
    sums, _ = lax.scan(lambda total, block: (total + block_sums(block).astype(total.dtype), None),
                       jnp.zeros((kh * kw, channels), jnp.promote_types(dy.dtype, jnp.float32)),
                       blocks)
  return sums.reshape(kh, kw, 1, channels)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _shifted(x, kernel, stride: int):
  return _shifted_forward(x, kernel, stride)


def _shifted_fwd(x, kernel, stride: int):
  return _shifted_forward(x, kernel, stride), (x, kernel)


def _input_gradient(x, kernel, dy, stride: int):
  """The input gradient. For kernels of 5x5 and up it is computed as what it is, a correlation of
  the output gradient (dilated by the stride, padded to the input's size) with the kernel flipped:
  one fused pass, 1.1-2.1x faster on XLA:CPU than autodiff's sum of k*k padded copies for
  EfficientNet-Lite0's 5x5 shapes at 288 px, strides 1 and 2. For 3x3 kernels autodiff's form is
  2x faster, and kept (BENCHMARKS.md)."""
  kh, kw = kernel.shape[:2]
  if kh * kw < 25:
    _, input_vjp = jax.vjp(lambda x: _shifted_forward(x, kernel, stride), x)
    return input_vjp(dy)[0]
  h, w = x.shape[1:3]
  (top, _), (left, _) = same_padding(h, kh, stride), same_padding(w, kw, stride)
  out_h, out_w = dy.shape[1:3]
  before_h, before_w = kh - 1 - top, kw - 1 - left  # so that the correlation is 'valid'
  after_h = h + kh - 1 - before_h - ((out_h - 1) * stride + 1)  # negative: cropped
  after_w = w + kw - 1 - before_w - ((out_w - 1) * stride + 1)
  dilated = lax.pad(dy, jnp.zeros((), dy.dtype), ((0, 0, 0), (before_h, after_h, stride - 1),
                                                   (before_w, after_w, stride - 1), (0, 0, 0)))
  return _weighted_taps(dilated, kernel[::-1, ::-1], 1, h, w)


def _shifted_bwd(stride: int, residuals, dy):
  x, kernel = residuals
  dx = _input_gradient(x, kernel, dy, stride)
  dk = _kernel_gradient(x, dy, kernel.shape, stride).astype(kernel.dtype)
  return dx, dk


_shifted.defvjp(_shifted_fwd, _shifted_bwd)
