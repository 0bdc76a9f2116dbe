"""Flax linen CNNs for rock classification (NHWC in, logits out).

`SeedCNN` is the reference baseline, `ResidualCNN` the reference residual network. Both take either
uint8 images in [0, 255] or float images already scaled to [0, 1], keep BatchNorm state in the
`batch_stats` collection, and switch between train and eval behaviour with the explicit `train`
argument. `create_model(config.model, num_classes)` builds either from the config.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

MODEL_NAMES = ('ResidualCNN', 'SeedCNN')  # model.name
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}  # model.dtype
BLOCK_ORDERS = ('relu_bn', 'bn_relu')  # model.block_order
CONV_IMPLS = ('auto', 'xla', 'matmul')  # model.conv_impl
# 'auto' computes convolutions on feature maps this small (or smaller) as one matmul: XLA:CPU's
# convolution kernels take ~20x longer than the equivalent matmul at 2x2 spatial size, where the last
# stage of the 32 px network runs. With XLA's Eigen convolutions (rockjax/environment.py), 2 beats 4
# and 8 (1.05x and 1.15x training images/s at 32 px; BENCHMARKS.md).
MATMUL_MAX_SPATIAL = 2

# Keras' he_normal: truncated normal, variance 2 / fan_in.
he_normal = nn.initializers.he_normal()


def batch_norm(module, train: bool) -> nn.BatchNorm:
  """BatchNorm configured from the calling module's bn_* fields.

  With `bn_axis_name` set (inside pmap), batch statistics are computed over the global batch, so a
  step on N devices normalises exactly like one device with the same global batch.
  """
  return nn.BatchNorm(use_running_average=not train, momentum=module.bn_momentum,
                      epsilon=module.bn_epsilon, axis_name=module.bn_axis_name if train else None,
                      dtype=module.dtype)


def layer_kwargs(module) -> dict:
  """The block-order, BatchNorm, dtype and conv fields a module passes on to its sub-blocks."""
  return dict(order=module.order, bn_momentum=module.bn_momentum, bn_epsilon=module.bn_epsilon,
              bn_axis_name=module.bn_axis_name, dtype=module.dtype, conv_impl=module.conv_impl)


def conv_as_matmul(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
  """Stride-1 'SAME' NHWC convolution as shifted slices, concatenated, times the HWIO kernel.

  Equal to lax.conv_general_dilated; its gradient is slices and pads plus two matmuls.
  """
  kh, kw, cin, cout = kernel.shape
  h, w = x.shape[1], x.shape[2]
  pad_h, pad_w = (kh - 1) // 2, (kw - 1) // 2
  xp = jnp.pad(x, ((0, 0), (pad_h, kh - 1 - pad_h), (pad_w, kw - 1 - pad_w), (0, 0)))
  cols = jnp.concatenate([xp[:, i:i + h, j:j + w, :] for i in range(kh) for j in range(kw)],
                         axis=-1)
  return cols @ kernel.reshape(kh * kw * cin, cout)


def max_pool_2x2(x: jnp.ndarray) -> jnp.ndarray:
  """2x2 max-pool, stride 2, 'VALID' (odd edges dropped), as a reshape and a max.

  Same values as nn.max_pool(x, (2, 2), strides=(2, 2)); its gradient avoids XLA:CPU's slow
  select-and-scatter (3x faster backward, BENCHMARKS.md). On exact ties within a window the
  gradient is shared between the tied inputs instead of going to one of them.
  """
  n, h, w, c = x.shape
  x = x[:, :h // 2 * 2, :w // 2 * 2]
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class Conv(nn.Module):
  """Stride-1 'SAME' 2-D convolution with an HWIO `kernel` and optional `bias` (as nn.Conv).

  `impl`: 'xla' (lax.conv_general_dilated), 'matmul' (conv_as_matmul), or 'auto' (matmul for
  feature maps of at most MATMUL_MAX_SPATIAL pixels a side). Parameters are the same either way.
  """
  features: int
  kernel_size: int
  use_bias: bool = True
  dtype: Any = jnp.float32
  impl: str = 'auto'

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    kernel = self.param('kernel', he_normal, (k, k, x.shape[-1], self.features), jnp.float32)
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    impl = self.impl
    if impl == 'auto':
      impl = 'matmul' if max(x.shape[1], x.shape[2]) <= MATMUL_MAX_SPATIAL else 'xla'
    if impl == 'matmul':
      y = conv_as_matmul(x, kernel)
    elif impl == 'xla':
      y = lax.conv_general_dilated(x, kernel, (1, 1), 'SAME',
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    else:
      raise ValueError(f'conv impl {self.impl!r} is not one of {CONV_IMPLS}')
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,), jnp.float32).astype(
          self.dtype)
    return y


def to_unit_range(images: jnp.ndarray, dtype: Any) -> jnp.ndarray:
  """uint8 images become floats in [0, 1]; float images are taken as already scaled."""
  if jnp.issubdtype(images.dtype, jnp.integer):
    return images.astype(dtype) / 255.0
  return images.astype(dtype)


def _setting(default):
  return dataclasses.field(default=default, kw_only=True)


class LayerSettings(nn.Module):
  """Settings every block passes down to its sub-blocks (keyword-only; see layer_kwargs)."""
  order: str = _setting('relu_bn')  # relu_bn (reference: Conv -> ReLU -> BN) | bn_relu
  bn_momentum: float = _setting(0.99)
  bn_epsilon: float = _setting(1e-3)
  bn_axis_name: str | None = _setting(None)  # the pmap axis for synchronised BatchNorm
  dtype: Any = _setting(jnp.float32)  # compute dtype; parameters stay float32
  conv_impl: str = _setting('auto')  # see Conv


class ConvAct(LayerSettings):
  """Conv, then ReLU and (optionally) BatchNorm in the configured order.

  `order='relu_bn'` is the reference's Conv -> ReLU -> BN; `order='bn_relu'` the usual Conv -> BN -> ReLU.
  """
  features: int
  kernel_size: int
  use_bn: bool = True

  @nn.compact
  def __call__(self, x, train: bool):
    # A bias right before BatchNorm is cancelled by it (zero gradient): conv-BN-ReLU omits it.
    use_bias = not (self.use_bn and self.order == 'bn_relu')
    x = Conv(self.features, self.kernel_size, use_bias=use_bias, dtype=self.dtype,
             impl=self.conv_impl)(x)
    if not self.use_bn:
      return nn.relu(x)
    bn = batch_norm(self, train)
    if self.order == 'relu_bn':
      return bn(nn.relu(x))
    return nn.relu(bn(x))


class ResidualStage(LayerSettings):
  """`convs` 3x3 convs on the main path plus a projection shortcut conv, added, then BN and pool.

  As in the reference: every conv has a ReLU, BatchNorm follows all main-path convs but the last, the
  shortcut is conv + ReLU, and the sum is batch-normalised and max-pooled 2x2.
  """
  features: int
  convs: int = 3
  kernel_size: int = 3
  shortcut_kernel: int = 3

  @nn.compact
  def __call__(self, x, train: bool):
    kw = layer_kwargs(self)
    shortcut = ConvAct(self.features, self.shortcut_kernel, use_bn=False, **kw)(x, train)
    y = x
    for i in range(self.convs):
      y = ConvAct(self.features, self.kernel_size, use_bn=i < self.convs - 1, **kw)(y, train)
    y = batch_norm(self, train)(y + shortcut)
    return max_pool_2x2(y)


class ResidualCNN(LayerSettings):
  """The reference residual CNN; defaults reproduce it (2,369,412 parameters for 4 classes)."""
  num_classes: int
  stem_features: int = 16
  stem_kernel: int = 7
  widths: Sequence[int] = (32, 64, 128, 256)
  convs_per_stage: int = 3
  kernel_size: int = 3
  shortcut_kernels: Sequence[int] = (5, 3, 3, 3)
  dropout: float = 0.2

  @nn.compact
  def __call__(self, images, train: bool):
    kw = layer_kwargs(self)
    x = to_unit_range(images, self.dtype)
    x = ConvAct(self.stem_features, self.stem_kernel, **kw)(x, train)
    x = max_pool_2x2(x)
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    for i, width in enumerate(self.widths):
      x = ResidualStage(width, convs=self.convs_per_stage, kernel_size=self.kernel_size,
                        shortcut_kernel=self.shortcut_kernels[i], **kw)(x, train)
      if i < len(self.widths) - 1:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return classifier_head(x, self.num_classes, self.dtype)


class SeedCNN(LayerSettings):
  """The reference's plain baseline: three Conv -> ReLU -> BN -> max-pool blocks, GAP, Dense."""
  num_classes: int
  widths: Sequence[int] = (16, 32, 64)
  kernel_sizes: Sequence[int] = (7, 5, 3)

  @nn.compact
  def __call__(self, images, train: bool):
    kw = layer_kwargs(self)
    x = to_unit_range(images, self.dtype)
    for width, kernel in zip(self.widths, self.kernel_sizes):
      x = ConvAct(width, kernel, **kw)(x, train)
      x = max_pool_2x2(x)
    return classifier_head(x, self.num_classes, self.dtype)


def classifier_head(x, num_classes: int, dtype) -> jnp.ndarray:
  """Global average pool and a Dense layer; logits come out in float32 (float64 in x64 tests)."""
  x = jnp.mean(x, axis=(1, 2))
  x = nn.Dense(num_classes, kernel_init=he_normal, dtype=dtype)(x)
  return x.astype(jnp.promote_types(dtype, jnp.float32))


def num_downsamplings(model_config) -> int:
  """How many 2x2 max-pools the configured model applies (the input must survive all of them)."""
  if model_config.name == 'SeedCNN':
    return len(model_config.widths)
  return 1 + len(model_config.widths)


def create_model(model_config, num_classes: int, bn_axis_name: str | None = None) -> nn.Module:
  """Builds the model named by `model_config.name` with every hyperparameter from the config.

  `bn_axis_name` is the pmap axis over which BatchNorm statistics are computed in training (when
  `model_config.sync_batchnorm` is set); leave it None outside pmap.
  """
  common = dict(num_classes=num_classes, order=model_config.block_order,
                bn_momentum=model_config.bn_momentum, bn_epsilon=model_config.bn_epsilon,
                bn_axis_name=bn_axis_name if model_config.sync_batchnorm else None,
                dtype=DTYPES[model_config.dtype], widths=tuple(model_config.widths),
                conv_impl=model_config.conv_impl)
  if model_config.name == 'SeedCNN':
    return SeedCNN(kernel_sizes=tuple(model_config.block_kernels), **common)
  if model_config.name == 'ResidualCNN':
    return ResidualCNN(stem_features=model_config.stem_features,
                       stem_kernel=model_config.stem_kernel,
                       convs_per_stage=model_config.convs_per_stage,
                       kernel_size=model_config.kernel_size,
                       shortcut_kernels=tuple(model_config.shortcut_kernels),
                       dropout=model_config.dropout, **common)
  raise ValueError(f'config.model.name: unknown model {model_config.name!r}; '
                   f'expected one of {MODEL_NAMES}')

