"""The `config.data` section: where the photos come from and how they are read, split and fed.

Its choices come from the modules that implement them: file extensions from folder.py, resampling
filters and aspect handling from imageio.py, the in-memory modes from tfds_source.py.
"""

from __future__ import annotations

import ml_collections

from rockjax.checks import check, choice, fraction, positive
from rockjax.data import folder, imageio, tfds_source

WHERE = ('host', 'device')  # data.where (and augment.where)
CLASS_BALANCE = ('none', 'weights', 'sampler')  # data.class_balance


def defaults() -> ml_collections.ConfigDict:
  d = ml_collections.ConfigDict()
  d.dir = ''  # a folder with one sub-folder per class; '' means the generated default set
  d.image_size = 32  # pixels a side that every photo is resized to (data.aspect, interpolation)
  d.val_fraction = 0.25  # of the images outside the test split
  d.repeats = 1  # passes over the training images per epoch, shuffled together (reference: 10)
  d.test_fraction = 0.0  # > 0: a test split carved off first, never seen in training
  d.min_test_images = 0  # a test split smaller than this is not carved (logged); 0: always
  d.interpolation = 'nearest'  # the reference's resize; see data/imageio.py RESAMPLE
  d.aspect = 'stretch'  # stretch (reference) | center_crop
  d.cache_dir = ''  # '' means $ROCKJAX_CACHE_DIR or ~/.cache/rockjax
  d.deterministic = True  # order-preserving parallel input pipeline
  d.host_threads = 0  # data.where=host: tf.data threads (decoding, augmentation); 0: all cores
  d.where = 'host'  # host: tf.data batches | device: the decoded set resident on the devices
  d.device_memory_mb = 4096  # data.where=device: the most the data may take on each device
  # Image file extensions read from a folder (any letter case; gif: the first frame).
  d.extensions = ','.join(e.lstrip('.') for e in folder.EXTENSIONS)
  d.alpha_background = 255  # grey level that transparent pixels are composited onto
  d.allow_empty_classes = False  # True: drop class folders with no usable image (warning)
  d.read_workers = 0  # decoding threads; 0 means one per CPU core
  d.group_duplicates = True  # keep copies of a photo on one side of every split and fold
  d.duplicate_threshold = 4  # dHash bits (of 64) for near-duplicates; -1: exact copies only
  d.kfold = 0  # K > 1: stratified K-fold cross-validation (one run per fold)
  d.fold = -1  # with kfold: -1 runs every fold; 0..K-1 trains just that fold
  d.split_from = ''  # a run's workdir (k-fold: its root): reuse its saved split(s) exactly
  d.exclude = ''  # a file of photos (one per line, or a label_issues.csv) kept out of training
  # Unequal classes: none | weights (each photo's loss weighted by the inverse of its class's
  # share) | sampler (each epoch drawn class-balanced, with replacement; in-memory data only)
  d.class_balance = 'none'
  # The generated default set (data.dir=''; configs/residual.py on it: 6.7 min on 2 cores):
  d.synthetic = ml_collections.ConfigDict(dict(
      num_per_class=200,  # images of each of its 4 classes
      image_size=64,  # pixels a side, as generated
      seed=0,  # the generator's seed
  ))
  # A TensorFlow Datasets image-classification set by name, not a folder (data/tfds_source.py).
  d.tfds = ''  # e.g. 'tf_flowers', 'cifar10:3.0.2', 'name/config'
  d.tfds_data_dir = ''  # where its prepared files are; '' means TFDS's default
  d.tfds_download = False  # True: download and prepare it when missing (needs the network)
  d.train_split = 'train'  # TFDS split syntax: 'train', 'train[:90%]', ...
  d.val_split = ''  # '' splits train_split like a folder (val_fraction, kfold, test_fraction)
  d.test_split = ''  # with val_split: a TFDS split to hold out as the test split
  d.tfds_image_key = ''  # '' finds the one Image feature
  d.tfds_label_key = ''  # '' finds the one ClassLabel feature
  # Streaming (data/streaming.py): a TFDS set read batch by batch instead of decoded into memory.
  d.in_memory = 'auto'  # auto (stream over memory_budget_mb) | true | false (stream)
  d.memory_budget_mb = 4096.0  # in_memory=auto: the most the decoded training images may take
  d.shuffle_buffer = 10000  # streaming: examples in the shuffle buffer
  return d


# data.dir may stay unset when a TFDS dataset names the data.
UNSET = {'dir': (lambda config: bool(config.data.tfds), ' (or --config.data.tfds=NAME)')}


def validate(config) -> None:
  d = config.data
  for key in ('image_size', 'device_memory_mb', 'repeats', 'memory_budget_mb', 'shuffle_buffer',
              'synthetic.num_per_class', 'synthetic.image_size'):
    positive(config, f'data.{key}')
  for key in ('read_workers', 'host_threads', 'min_test_images'):
    positive(config, f'data.{key}', allow_zero=True)
  check(not (d.tfds and d.dir), 'data.tfds',
        f'{d.tfds!r} and data.dir={d.dir!r} both name the data; set one')
  check(d.tfds or not (d.val_split or d.test_split), 'data.val_split',
        'val_split and test_split name splits of a TFDS dataset (data.tfds)')
  choice(config, 'data.in_memory', tfds_source.IN_MEMORY)
  check(d.in_memory != 'false' or d.tfds, 'data.in_memory',
        'false streams a TFDS dataset (data.tfds); a photo folder is decoded into memory. To '
        'stream one, build it into a TFDS dataset first: scripts/build_rock_photos.py')
  choice(config, 'data.where', WHERE)
  check(d.in_memory != 'false' or d.where == 'host', 'data.in_memory',
        'false streams from the host; data.where=device needs the set in memory')
  check(not (d.test_split and d.test_fraction), 'data.test_split',
        'names the test split; leave data.test_fraction at 0')
  fraction(config, 'data.val_fraction', False, False)
  fraction(config, 'data.test_fraction', True, False, ' (0: no test split)')
  check(0 <= d.alpha_background <= 255, 'data.alpha_background',
        f'must be a grey level in [0, 255], got {d.alpha_background!r}')
  check(d.kfold == 0 or d.kfold >= 2, 'data.kfold', f'must be 0 (off) or >= 2, got {d.kfold!r}')
  check(-1 <= d.fold < max(d.kfold, 1) or d.kfold == 0, 'data.fold',
        f'must be -1 or in [0, {d.kfold}), got {d.fold!r}')
  check(d.duplicate_threshold <= 32, 'data.duplicate_threshold',
        f'{d.duplicate_threshold} of 64 bits would merge unrelated photos; use <= 32')
  choice(config, 'data.class_balance', CLASS_BALANCE)
  check(d.class_balance != 'sampler' or d.in_memory != 'false', 'data.class_balance',
        'sampler draws from a training set in memory; data.in_memory=false streams it (use '
        'class_balance=weights)')
  choice(config, 'data.interpolation', tuple(imageio.RESAMPLE))
  choice(config, 'data.aspect', imageio.ASPECTS)
