"""The reference residual CNN recipe: ResidualCNN at 32x32, Adam 1e-4, batch 32, dropout 0.2,
reduce-on-plateau on val loss, early stopping on val accuracy, flips + brightness augmentation.

    python main.py --config=configs/residual.py --config.model.dropout=0.1
"""

from rockjax import configlib


def get_config():
  config = configlib.base_config()
  config.model.name = 'ResidualCNN'
  return config
