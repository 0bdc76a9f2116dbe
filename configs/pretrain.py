"""Pretraining recipe: the recommended network, trained briefly at 32 px on a large, clean photo
set, as the starting point of configs/finetune.py.

    python main.py --config=configs/pretrain.py --config.data.dir=/path/to/large/set \
        --workdir=runs/pretrain

It is configs/rocks.py (read from that file, so the network stays the same) at 32 px, for 8 epochs,
with a tenth of the set held out for validation, no test split, and the images kept and augmented
on the device (data.where=device). The photos are a required
setting: without `data.dir` (or `data.tfds`) the run stops with a one-line error instead of
pretraining on the generated default set. The network is fully convolutional, so the weights it
learns at 32 px load at any input size.

In docs/ablations.md it ran on ../shared/data/cifar10/train (50,000 photos in 10 classes, a tenth
held out: 45,000 / 5,000; read there through a TFDS build of the folder) in 8.6 minutes on 2 CPU
cores, reaching 62.7% validation accuracy. This file as shipped, on that folder: 61.5% after 10.2
minutes (0.5 decoding the 50,000 JPEGs, 2.8 finding duplicates, which now takes about 11 s, 7.2
training). Fine-tuned from that run at 96 px (configs/finetune.py),
rock7 gained 2.35 points at the final epoch over training from scratch (ahead on 4 of its 5 folds).
"""

import os

from ml_collections import config_dict

from rockjax import configlib


def get_config():
  c = configlib.load_config_file(os.path.join(os.path.dirname(__file__), 'rocks.py'))
  c.data.dir = config_dict.placeholder(str)  # required: the photos to pretrain on
  c.data.image_size = 32
  c.num_epochs = 8
  c.data.val_fraction = 0.1
  c.data.test_fraction = 0.0
  # Tens of thousands of photos at 32 px fit on the device (45,000 take 138 MB) and are augmented
  # in the step: about 900 img/s on 2 CPU cores against the host path's 231 (Albumentations), and
  # the only path that keeps a GPU fed.
  c.data.where = 'device'
  c.augment.where = 'device'
  return c
