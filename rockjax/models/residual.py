"""The reference residual CNN (ResidualCNN): a stem, residual stages with projection shortcuts,
BatchNorm and dropout, and its registry entry."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from rockjax import checks, pixels
from rockjax.models import registry
from rockjax.models.layers import (BLOCK_ORDERS, ConvAct, LayerSettings, Network, batch_norm,
                                   classifier_head, layer_kwargs, max_pool_2x2)


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


class ResidualCNN(Network):
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
  def __call__(self, images, train: bool, features: bool = False):
    x = pixels.to_unit_range(images, self.dtype)
    x = ConvAct(self.stem_features, self.stem_kernel, name='ConvAct_0',
                **layer_kwargs(self, 'ConvAct_0'))(x, train)
    x = max_pool_2x2(x)
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    for i, width in enumerate(self.widths):
      name = f'ResidualStage_{i}'
      x = ResidualStage(width, convs=self.convs_per_stage, kernel_size=self.kernel_size,
                        shortcut_kernel=self.shortcut_kernels[i], name=name,
                        **layer_kwargs(self, name))(x, train)
      if i < len(self.widths) - 1:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return classifier_head(x, self.num_classes, self.dtype, features=features)


def build(m, num_classes: int, **settings) -> ResidualCNN:  # settings: layers.Network's fields
  return ResidualCNN(num_classes=num_classes, stem_features=m.stem_features,
                     stem_kernel=m.stem_kernel, widths=tuple(m.widths),
                     convs_per_stage=m.convs_per_stage, kernel_size=m.kernel_size,
                     shortcut_kernels=tuple(m.shortcut_kernels), dropout=m.dropout,
                     order=m.block_order, **settings)


def check_widths(config) -> None:
  widths = tuple(config.model.widths)
  checks.check(len(widths) > 0 and all(w > 0 for w in widths), 'model.widths',
               f'needs positive widths, got {widths}')
  checks.choice(config, 'model.block_order', BLOCK_ORDERS)


def validate(config) -> None:
  m = config.model
  check_widths(config)
  checks.check(len(m.shortcut_kernels) == len(m.widths), 'model.shortcut_kernels',
               f'needs one kernel per stage ({len(m.widths)} widths), got {tuple(m.shortcut_kernels)}')
  checks.positive(config, 'model.convs_per_stage')


NETWORK = registry.Network(
    name='ResidualCNN', build=build, validate=validate,
    min_image_size=lambda m: 2 ** (1 + len(m.widths)),  # the stem's pool, then one per stage
    modules=lambda m: ('ConvAct_0',) + tuple(f'ResidualStage_{i}' for i in range(len(m.widths))),
    fields=dict(
        widths=(32, 64, 128, 256),  # stage widths (SeedCNN: block widths)
        stem_features=16,  # channels of the stem conv
        stem_kernel=7,  # kernel size of the stem conv
        convs_per_stage=3,  # convs beside each stage's projection shortcut
        kernel_size=3,  # kernel size of the stages' convs
        shortcut_kernels=(5, 3, 3, 3),  # one per stage
        # reference: Conv -> ReLU -> BN; or bn_relu: Conv -> BN -> ReLU
        block_order='relu_bn',
    ))
