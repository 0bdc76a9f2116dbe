"""The reference's plain baseline: SeedCNN (three Conv/ReLU/BN/max-pool blocks) on the same data.

    python main.py --config=configs/baseline.py
"""

from rockjax import schema


def get_config():
  config = schema.base_config()
  config.model.name = 'SeedCNN'
  config.model.widths = (16, 32, 64)
  config.model.block_kernels = (7, 5, 3)
  config.model.dropout = 0.0
  return config
