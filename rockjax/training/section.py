"""The top-level fields of the config: the run (epochs, batches, devices, checkpoints, processes),
the optimiser and its schedule, fine-tuning from other weights, and the cached-features mode.

Schedules come from optim.py, the module names that init_freeze takes from the model's registry
entry (models/section.py), the augmentation that features.passes needs from the preset table.
"""

from __future__ import annotations

import ml_collections

from rockjax import models
from rockjax.augment import presets
from rockjax.checks import check, choice, fraction, positive
from rockjax.serving import label_issues
from rockjax.training import optim


def defaults() -> dict:
  c = {}
  c['seed'] = 0  # initialisation, shuffling, augmentation and dropout; the split has its own
  c['num_epochs'] = 60  # passes over the training set (early stopping may end sooner)
  c['batch_size'] = 32  # global: split over all devices of all processes
  c['eval_batch_size'] = 256  # global
  c['num_devices'] = 0  # local devices to use; 0 means all of them
  c.update(_optimiser())
  c['early_stopping_patience'] = 10  # epochs without a val-accuracy gain; 0 disables
  c['log_every_steps'] = 0  # extra within-epoch log lines; 0 means only per-epoch lines
  c['curves'] = True  # False: no curves.png (metrics.jsonl and TensorBoard have every number)
  c['curves_every_seconds'] = 30.0  # curves.png is redrawn at most this often, and at the end
  c['steps_per_dispatch'] = 1  # train steps per compiled call (lax.scan); raise it on a GPU or TPU
  c['checkpoint_every_epochs'] = 1  # how often the latest state is saved (the best: each gain)
  c['ema_decay'] = 0.0  # > 0 (e.g. 0.99): evaluate, keep and export a moving average of the weights
  c['test_time_flip'] = False  # average each image's class probabilities with its mirror image's
  c['test_time_rotate'] = False  # also over the image turned by 90, 180, 270 degrees (4x the work)
  c['distributed'] = False  # True: jax.distributed.initialize() (multi-host); training/runtime.py
  c['distributed_timeout_seconds'] = 100  # multi-host: a silent process ends the others after this
  # Fine-tuning (rockjax/training/finetune.py): start from another run's best checkpoint.
  c['init_from'] = ''  # that run's workdir; '' trains from scratch
  # Top-level modules kept fixed (with init_from or model.pretrained), by name or first:last range:
  # 'ConvAct_0,ResidualStage_0' = ResidualCNN's stem and stage 0; 'stem:block_11' for
  # EfficientNetLite0's first 13; 'all': all but the head.
  c['init_freeze'] = ''
  c['init_lr_multiplier'] = 1.0  # scales the updates of the other pretrained layers (not the head)
  # The fast mode for CPUs (rockjax/training/features.py): with pretrained weights, only the head
  # trains, on the backbone's features, computed once per image (per pass) and cached in the workdir.
  c['features'] = ml_collections.ConfigDict(dict(
      enabled=False,  # True: the head alone trains, on cached features (configs/pretrained_features.py)
      passes=1,  # versions of each training image: 1 = as decoded; more = augmented (device preset)
      batch_size=32,  # images per call when computing features (memory grows with it)
  ))
  # Screening the training labels (rockjax/training/screening.py): before training, each training
  # photo is scored by a model that never saw its label (frozen ImageNet features, a linear head
  # cross-fitted over parts of the training split), and the likeliest label issues are left out.
  c['label_screen'] = ml_collections.ConfigDict(dict(
      drop_fraction=0.0,  # at most this share of the training photos left out; 0: no screening
      network='EfficientNetLite0',  # whose ImageNet features score the photos
      image_size=320,  # pixels a side the photos are read at, from their files, for the screen
      folds=5,  # parts of the training split; each part is scored by a head fitted on the rest
      l2=1e-3,  # the head's L2 penalty (on standardised features)
      steps=500,  # L-BFGS iterations per head
      batch_size=64,  # photos per call of the network (each with its mirror image)
      method='prune_by_noise_rate',  # how issues are flagged (serving/label_issues.py)
  ))
  return c


def _optimiser() -> dict:
  return dict(
      learning_rate=1e-4,  # Adam's (the peak of warmup_cosine; plateau's starting rate)
      weight_decay=0.0,  # > 0 selects AdamW (decoupled weight decay)
      adam_b1=0.9,  # Adam's first-moment decay
      adam_b2=0.999,  # Adam's second-moment decay
      adam_eps=1e-7,  # Keras' default epsilon
      label_smoothing=0.0,  # in [0, 1): the share of each target spread over all classes
      grad_clip_norm=0.0,  # 0 disables clipping
      schedule='plateau',  # constant | warmup_cosine | plateau
      warmup_epochs=0.0,  # warmup_cosine: linear warmup from 0, in (fractional) epochs
      # True (the recommended recipes): a batch larger than the training set shrinks to fit it,
      # and a warmup longer than half the run is cut to half, each change logged; False: both are
      # errors
      adapt_to_data=False,
      cosine_final_fraction=0.0,  # final lr of warmup_cosine, as a fraction of learning_rate
      # schedule=plateau, as Keras' ReduceLROnPlateau on the validation loss:
      plateau=ml_collections.ConfigDict(dict(
          factor=0.5,  # the learning rate is multiplied by this when the loss stops improving
          patience=3,  # epochs without an improvement of min_delta or more before it drops
          min_lr=1e-5,  # the rate never goes below this
          min_delta=1e-4,  # the least change of the validation loss that counts as improving
      )),
  )


def validate(config) -> None:
  for key in ('num_epochs', 'batch_size', 'eval_batch_size', 'learning_rate',
              'checkpoint_every_epochs', 'steps_per_dispatch', 'distributed_timeout_seconds'):
    positive(config, key)
  for key in ('num_devices', 'weight_decay', 'label_smoothing', 'grad_clip_norm', 'warmup_epochs',
              'early_stopping_patience', 'log_every_steps', 'curves_every_seconds',
              'plateau.patience', 'plateau.min_lr',
              'plateau.min_delta', 'cosine_final_fraction', 'init_lr_multiplier'):
    positive(config, key, allow_zero=True)
  fraction(config, 'label_smoothing', True, False)
  fraction(config, 'ema_decay', True, False, ' (0 disables)')
  fraction(config, 'plateau.factor', False, False)
  check(config.warmup_epochs <= config.num_epochs or config.adapt_to_data, 'warmup_epochs',
        f'{config.warmup_epochs} exceeds num_epochs={config.num_epochs} (lower it, or set '
        'adapt_to_data=True to cap it)')
  choice(config, 'schedule', optim.SCHEDULES)
  _validate_start(config)
  _validate_features(config)
  _validate_label_screen(config)


def _validate_start(config) -> None:
  """The starting weights: another run (init_from) or pretrained ones, and what stays frozen."""
  check(config.init_from or config.model.pretrained or not config.init_freeze, 'init_freeze',
        'freezes pretrained layers: set init_from (the run to start from) or model.pretrained '
        'too')
  check(not (config.init_from and config.model.pretrained), 'model.pretrained',
        f'{config.model.pretrained!r} and init_from={config.init_from!r} both name the starting '
        'weights; set one')


def _validate_features(config) -> None:
  f = config.features
  positive(config, 'features.passes')
  positive(config, 'features.batch_size')
  if not f.enabled:
    return
  check(config.model.pretrained or config.init_from, 'features.enabled',
        'trains the head on a fixed, pretrained backbone: set model.pretrained (e.g. imagenet) or '
        'init_from')
  check(config.init_freeze in ('', 'all'), 'init_freeze',
        f'{config.init_freeze!r}: features.enabled freezes every module but the head already; '
        'leave init_freeze empty')
  check(not (config.augment.mixup_alpha or config.augment.cutmix_alpha), 'augment.mixup_alpha',
        'mixup and CutMix blend images, not cached features; set both alphas to 0 with '
        'features.enabled')
  if f.passes > 1:
    check(config.augment.preset in presets.DEVICE_PRESETS and config.augment.preset != 'none',
          'features.passes',
          f'{f.passes} passes augment the training images with augment.preset\'s device version; '
          f'{config.augment.preset!r} has none that changes the images (device presets: '
          f'{presets.DEVICE_PRESETS})')


def _validate_label_screen(config) -> None:
  s = config.label_screen
  fraction(config, 'label_screen.drop_fraction', True, False, ' (0: no screening)')
  for key in ('image_size', 'steps', 'batch_size'):
    positive(config, f'label_screen.{key}')
  positive(config, 'label_screen.l2', allow_zero=True)
  check(s.folds >= 2, 'label_screen.folds', f'must be >= 2, got {s.folds!r}')
  choice(config, 'label_screen.method', label_issues.METHODS)
  network = models.registry.get(s.network) if s.network in models.registry.names() else None
  check(network is not None and 'imagenet' in network.weights, 'label_screen.network',
        f'{s.network!r} has no ImageNet weights; one of ' + str(tuple(
            n.name for n in models.registry.networks() if 'imagenet' in n.weights)))
  check(not s.drop_fraction or not config.data.tfds, 'label_screen.drop_fraction',
        'screening reads the photos from their files; a TFDS dataset (data.tfds) has none')
