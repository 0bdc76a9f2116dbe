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
  n, h, w, _ = x.shape
  (top, bottom), (left, right) = same_padding(h, kh, stride), same_padding(w, kw, stride)
  xp = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
  out_h, out_w = -(-h // stride), -(-w // stride)
  y = None
  for i in range(kh):
    for j in range(kw):
      tap = lax.slice(xp, (0, i, j, 0), (n, i + (out_h - 1) * stride + 1,
                                         j + (out_w - 1) * stride + 1, channels),
                      (1, stride, stride, 1)) * kernel[i, j, 0]
      y = tap if y is None else y + tap
  return y
