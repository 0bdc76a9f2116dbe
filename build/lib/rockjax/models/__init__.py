"""The networks, by name (`config.model.name`), and what they are built from.

- registry.py: one `Network` entry per network (builder, config fields, validator, weights);
- layers.py: the building blocks they share; depthwise.py: depthwise convolutions per backend;
- residual.py (ResidualCNN, the reference), seed.py (SeedCNN, its baseline), efficientnet.py
  (EfficientNet-Lite0/1/2, with ImageNet weights);
- section.py: the `config.model` section's defaults and validation.

Adding a network: a module that defines its `registry.Network`, and one line below.
"""

from rockjax.models import efficientnet, registry, residual, seed, section
from rockjax.models.layers import (BLOCK_ORDERS, CONV_IMPLS, DTYPES, HEAD, conv_as_matmul,
                                   max_pool_2x2)
from rockjax.models.residual import ResidualCNN
from rockjax.models.seed import SeedCNN

registry.register(residual.NETWORK)
registry.register(seed.NETWORK)
for _network in efficientnet.NETWORKS:  # EfficientNetLite0, 1 and 2
  registry.register(_network)


def create_model(model_config, num_classes: int, bn_axis_name: str | None = None,
                 frozen: tuple[str, ...] = ()):
  """Builds the network named by `model_config.name` with every hyperparameter from the config.

  `bn_axis_name` is the pmap axis over which BatchNorm statistics are computed in training (when
  `model_config.sync_batchnorm` is set); leave it None outside pmap. `frozen`: top-level modules
  that train as fixed functions (layers.Network).
  """
  network = registry.get(model_config.name)
  return network.build(model_config, num_classes, frozen=tuple(frozen),
                       **section.layer_settings(model_config, bn_axis_name))


__all__ = ['BLOCK_ORDERS', 'CONV_IMPLS', 'DTYPES', 'HEAD', 'ResidualCNN', 'SeedCNN',
           'conv_as_matmul', 'create_model', 'max_pool_2x2', 'registry', 'section']
