"""Fine-tuning recipe: configs/rocks.py started from a pretrained run (configs/pretrain.py).

    python main.py --config=configs/finetune.py --config.init_from=runs/pretrain \
        --config.data.dir=/path/to/photos

It is configs/rocks.py (read from that file) with `init_from` a required setting: the run starts
from that run's best checkpoint (parameters and BatchNorm statistics; the classifier head is
re-initialised when the classes differ) and trains every layer with the recipe's schedule. Without
`init_from` the run stops with a one-line error instead of training from scratch.

On rock7's 5 folds at 96 px (docs/ablations.md), starting from the 30-epoch 32 px CIFAR-10 run of
configs/pretrain.py beat training from scratch by 5.23 +- 0.93 points at the final epoch (60.78%
against 55.55%, ahead on every fold) and by 4.42 at the best epoch (62.13% against 57.71%); from
an 8-epoch pretraining the gain was 2.35 points (57.90%, ahead on 4 of 5 folds).
Freezing the early layers (`init_freeze`) gave the gain back at 32 px, so this recipe freezes none.
"""

import os

from ml_collections import config_dict

from rockjax import configlib


def get_config():
  c = configlib.load_config_file(os.path.join(os.path.dirname(__file__), 'rocks.py'))
  c.init_from = config_dict.placeholder(str)  # required: the pretrained run's workdir
  return c
