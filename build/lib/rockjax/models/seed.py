"""The reference's plain baseline (SeedCNN): three Conv -> ReLU -> BN -> max-pool blocks, global
average pool, Dense; and its registry entry."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from rockjax import checks, pixels
from rockjax.models import registry, residual
from rockjax.models.layers import ConvAct, Network, classifier_head, layer_kwargs, max_pool_2x2


class SeedCNN(Network):
  """The reference's plain baseline: three Conv -> ReLU -> BN -> max-pool blocks, GAP, Dense."""
  num_classes: int
  widths: Sequence[int] = (16, 32, 64)
  kernel_sizes: Sequence[int] = (7, 5, 3)

  @nn.compact
  def __call__(self, images, train: bool, features: bool = False):
    x = pixels.to_unit_range(images, self.dtype)
    for i, (width, kernel) in enumerate(zip(self.widths, self.kernel_sizes)):
      name = f'ConvAct_{i}'
      x = ConvAct(width, kernel, name=name, **layer_kwargs(self, name))(x, train)
      x = max_pool_2x2(x)
    return classifier_head(x, self.num_classes, self.dtype, features=features)


def build(m, num_classes: int, **settings) -> SeedCNN:
  return SeedCNN(num_classes=num_classes, widths=tuple(m.widths),
                 kernel_sizes=tuple(m.block_kernels), order=m.block_order, **settings)


def validate(config) -> None:
  m = config.model
  residual.check_widths(config)
  checks.check(len(m.block_kernels) == len(m.widths), 'model.block_kernels',
               f'needs one kernel per block ({len(m.widths)} widths), got {tuple(m.block_kernels)}')


NETWORK = registry.Network(
    name='SeedCNN', build=build, validate=validate,
    min_image_size=lambda m: 2 ** len(m.widths),  # one 2x2 pool per block
    modules=lambda m: tuple(f'ConvAct_{i}' for i in range(len(m.widths))),
    fields=dict(
        # Shared with ResidualCNN, so with the same defaults (configs/baseline.py sets the
        # reference's (16, 32, 64)).
        widths=residual.NETWORK.fields['widths'],
        block_order=residual.NETWORK.fields['block_order'],
        block_kernels=(7, 5, 3),  # SeedCNN: one per block
    ))
