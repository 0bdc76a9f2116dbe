"""The fast mode for CPUs: configs/pretrained.py's network and ImageNet weights, fixed; only the
classifier head trains, on each photo's features, computed once and cached in the workdir.

    python main.py --config=configs/pretrained_features.py --config.data.dir=/path/to/photos

Every photo goes through EfficientNet-Lite0 once, at 320 px (the backbone's cost is paid once, so
the input can be larger than the fine-tuning recipe's), and its pooled features are kept in
<workdir>/features/: the top's 1,280, and the outputs of six earlier blocks (model.head_blocks,
768 more: mid-level features, which describe texture; 2.2 points on rock7, ahead on every fold).
The head (dropout 0.2, then the linear classifier) then trains on them for 30 epochs in seconds
(Adam at 1e-3, warmup and cosine decay, label smoothing 0.1). The saved checkpoint
is the whole network, so eval, predict and export work as for any run. Test-time flips, as in
configs/pretrained.py: each validation photo's mirror image has its features cached too, and the
head's probabilities on the two are averaged, as eval, predict and export average the network's.
`--config.features.passes=3 --config.augment.preset=flip` adds two flipped versions of every
training photo (one more backbone pass each).

Measured on rock7 in docs/pretrained.md, against configs/pretrained.py (which fine-tunes the last
blocks too, at about ten times the cost).
"""

import os

from rockjax import configlib


def get_config():
  c = configlib.load_config_file(os.path.join(os.path.dirname(__file__), 'pretrained.py'))
  c.features.enabled = True
  c.features.passes = 1
  c.init_freeze = ''  # everything but the head is fixed (implied by features.enabled)
  c.num_epochs = 30
  c.batch_size = 64
  c.data.image_size = 320
  # The head reads these blocks' pooled outputs too (texture at several scales): 75.92% against
  # 73.76% with the top's features alone. Not in configs/pretrained.py: fine-tuned, it scored less.
  c.model.head_blocks = 'block_2,block_4,block_7,block_10,block_14,block_15'
  return c
