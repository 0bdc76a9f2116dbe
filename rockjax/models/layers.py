"""Building blocks shared by the networks: convolutions, BatchNorm from the module's settings, the
2x2 max-pool and the classifier head.

Every network takes uint8 images in [0, 255] or float images already scaled to [0, 1], keeps its
BatchNorm state in the `batch_stats` collection, switches between train and eval behaviour with the
explicit `train` argument, and names its classifier layer `Dense_0` (HEAD): fine-tuning keeps or
re-initialises it, and the optimiser trains it at the full rate.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}  # model.dtype
BLOCK_ORDERS = ('relu_bn', 'bn_relu')  # model.block_order
CONV_IMPLS = ('auto', 'xla', 'matmul')  # model.conv_impl
HEAD = 'Dense_0'  # the classifier layer of every network (classifier_head)
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
  step on N devices normalises exactly like one device with the same global batch. With `bn_frozen`
  (model.freeze_batchnorm), training normalises with the running statistics and leaves them as they
  are (the usual way to fine-tune pretrained BatchNorm on small batches); scale and bias still train.
  """
  frozen = not train or module.bn_frozen
  if not train and module.bn_fold:
    return FoldedBatchNorm(epsilon=module.bn_epsilon, dtype=module.dtype)
  return nn.BatchNorm(use_running_average=frozen, momentum=module.bn_momentum,
                      epsilon=module.bn_epsilon, axis_name=None if frozen else module.bn_axis_name,
                      dtype=module.dtype)


class FoldedBatchNorm(nn.Module):
  """Inference BatchNorm as `x * a + b`, with a = scale / sqrt(var + eps) and b = bias - mean * a
  computed from the variables: the form a converter folds into the convolution before it (TFLite
  fuses the multiply and add into the conv's kernel and bias, which int8 quantisation needs).
  Its variables are nn.BatchNorm's, under the same auto-name (the class shares its name)."""
  epsilon: float = 1e-3
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    mean = self.variable('batch_stats', 'mean', jnp.zeros, (c,), jnp.float32).value
    var = self.variable('batch_stats', 'var', jnp.ones, (c,), jnp.float32).value
    scale = self.param('scale', nn.initializers.ones, (c,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (c,), jnp.float32)
    a = scale * lax.rsqrt(var + self.epsilon)
    return (x * a.astype(self.dtype) + (bias - mean * a).astype(self.dtype)).astype(self.dtype)


FoldedBatchNorm.__name__ = FoldedBatchNorm.__qualname__ = 'BatchNorm'  # nn.BatchNorm's auto-names


def layer_kwargs(module, name: str | None = None) -> dict:
  """The block-order, BatchNorm, dtype and conv fields a module passes on to its sub-blocks; for
  the top-level module `name` of a network, with its BatchNorm frozen when the network's
  `frozen` modules include it."""
  kw = {setting: getattr(module, setting) for setting in SETTINGS}
  if name is not None and is_frozen(name, module.frozen):
    kw['bn_frozen'] = True
  return kw


FREEZE_ALL = 'all'  # init_freeze: every module but the head


def is_frozen(name: str, frozen: tuple[str, ...]) -> bool:
  """Whether the top-level module `name` is among `frozen` (the head never is)."""
  return name != HEAD and (name in frozen or FREEZE_ALL in frozen)


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
  bn_frozen: bool = _setting(False)  # see batch_norm
  depthwise_impl: str = _setting('auto')  # see rockjax/models/depthwise.py
  bn_fold: bool = _setting(False)  # evaluation BatchNorm as FoldedBatchNorm (model.fold_batchnorm)


SETTINGS = ('order', 'bn_momentum', 'bn_epsilon', 'bn_axis_name', 'dtype', 'conv_impl',
            'bn_frozen', 'depthwise_impl', 'bn_fold')


class Network(LayerSettings):
  """A whole network: its top-level modules named in `frozen` (init_freeze; 'all': all but the
  head) are fixed functions in training, their BatchNorm normalising with the running statistics
  (as Keras does for a layer that is not trainable; the train step gives their parameters no
  gradient).

  Called with `features=True` it returns the pooled features that its classifier reads; `head()`
  is that classifier alone, as a module whose parameters are the network's `Dense_0` subtree, so
  a head trained on cached features is the network's own (rockjax/training/features.py).
  """
  frozen: tuple[str, ...] = _setting(())
  head_dropout = 0.0  # the dropout rate right before the classifier (a subclass may override)

  def head(self) -> 'Head':
    return Head(num_classes=self.num_classes, dtype=self.dtype, dropout=self.head_dropout,
                parent=None)


class Head(nn.Module):
  """A network's classifier on its pooled features [N, C]: the parameters {HEAD: ...}."""
  num_classes: int
  dtype: Any = jnp.float32
  dropout: float = 0.0

  @nn.compact
  def __call__(self, features, train: bool = False):
    return classifier(features, self.num_classes, self.dtype, self.dropout, train)


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


def global_pool(x: jnp.ndarray) -> jnp.ndarray:
  """Global average pool: [N, H, W, C] -> the features [N, C] that the classifier reads."""
  return jnp.mean(x, axis=(1, 2))


def classifier(features: jnp.ndarray, num_classes: int, dtype, dropout: float = 0.0,
               train: bool = False) -> jnp.ndarray:
  """Dropout (when > 0) and the Dense layer (`Dense_0` in the calling module, or standalone under
  `nn.apply`); logits come out in float32 (float64 in x64 tests)."""
  if dropout:
    features = nn.Dropout(dropout, deterministic=not train)(features)
  x = nn.Dense(num_classes, kernel_init=he_normal, dtype=dtype)(features)
  return x.astype(jnp.promote_types(dtype, jnp.float32))


MAP = 'map'  # features=MAP: the last feature map, before pooling (serving/saliency.py)


def classifier_head(x, num_classes: int, dtype, dropout: float = 0.0, train: bool = False,
                    features: bool | str = False, extra: tuple = ()) -> jnp.ndarray:
  """Global average pool and the classifier; with `features`, the pooled features instead of the
  logits (what a frozen backbone hands to a head trained on its own); with features='map', the
  feature map [N, H, W, C] before pooling (class activation maps). `extra`: pooled features of
  earlier layers [N, C_i], read by the classifier after the last map's own (so the classifier's
  first C kernel rows are the map's, which class activation maps use)."""
  if features == MAP:
    return x
  pooled = global_pool(x)
  if extra:
    pooled = jnp.concatenate([pooled] + [e.astype(pooled.dtype) for e in extra], axis=-1)
  if features:
    return pooled
  return classifier(pooled, num_classes, dtype, dropout, train)
