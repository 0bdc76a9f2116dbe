"""`validate(config)`: a bad value becomes a `ConfigError` naming its key, before anything runs.

Valid choices are read from the modules that implement them (one source for each list): the
model section is validated by rockjax/models/section.py (each network's own fields by its registry
entry), interpolations and
aspects from rockjax/data/imageio.py, schedules from rockjax/training/optim.py, augmentation presets
and their knobs from rockjax/augment/presets.py, label-issue methods from
rockjax/serving/label_issues.py.
"""

from __future__ import annotations

from rockjax import models
from rockjax.augment import presets
from rockjax.checks import check as _check, choice as _choice, fraction as _fraction
from rockjax.checks import positive as _positive
from rockjax.configlib.files import flatten
from rockjax.data import imageio, tfds_source
from rockjax.errors import ConfigError
from rockjax.serving import label_issues
from rockjax.training import optim

TEST_TIME_FLIP_OVERRIDES = ('run', 'on', 'off')  # eval.test_time_flip
EVAL_SPLITS = ('val', 'test')  # eval.split


def _check_required(config) -> None:
  """A config file may leave a field to the command line (`config_dict.placeholder`: None until
  set): configs/finetune.py's init_from, configs/pretrain.py's data.dir (or data.tfds)."""
  for key, value in flatten(config.to_dict()).items():
    if value is None and not (key == 'data.dir' and config.data.tfds):
      hint = ' (or --config.data.tfds=NAME)' if key == 'data.dir' else ''
      raise ConfigError(f'config.{key}: this config needs it set on the command line: '
                        f'--config.{key}=...{hint}; its docstring says what it is')


def validate(config) -> None:
  """Raises ConfigError naming the first key whose value cannot work."""
  _check_required(config)
  for key in ('num_epochs', 'batch_size', 'eval_batch_size', 'learning_rate',
              'data.image_size',
              'checkpoint_every_epochs', 'steps_per_dispatch', 'data.device_memory_mb',
              'data.repeats', 'data.memory_budget_mb', 'data.shuffle_buffer',
              'distributed_timeout_seconds',
              'data.synthetic.num_per_class',
              'data.synthetic.image_size', 'eval.batch_size', 'predict.batch_size',
              'export.calibration_images', 'preview.per_class', 'preview.versions'):
    _positive(config, key)
  for key in ('num_devices', 'weight_decay', 'label_smoothing', 'grad_clip_norm', 'warmup_epochs',
              'early_stopping_patience', 'log_every_steps', 'data.read_workers',
              'data.host_threads',
              'plateau.patience', 'plateau.min_lr', 'plateau.min_delta',
              'cosine_final_fraction', 'eval.num_errors_shown',
              'eval.num_label_issues_shown', 'predict.latency_runs', 'export.latency_runs',
              'data.min_test_images',
              'augment.mixup_alpha', 'augment.cutmix_alpha', 'init_lr_multiplier'):
    _positive(config, key, allow_zero=True)
  _check(not (config.data.tfds and config.data.dir), 'data.tfds',
         f'{config.data.tfds!r} and data.dir={config.data.dir!r} both name the data; set one')
  _check(config.data.tfds or not (config.data.val_split or config.data.test_split),
         'data.val_split', 'val_split and test_split name splits of a TFDS dataset (data.tfds)')
  _choice(config, 'data.in_memory', tfds_source.IN_MEMORY)
  _check(config.data.in_memory != 'false' or config.data.tfds, 'data.in_memory',
         'false streams a TFDS dataset (data.tfds); a photo folder is decoded into memory. To '
         'stream one, build it into a TFDS dataset first: scripts/build_rock_photos.py')
  _check(config.data.in_memory != 'false' or config.data.where == 'host', 'data.in_memory',
         'false streams from the host; data.where=device needs the set in memory')
  _check(not (config.data.test_split and config.data.test_fraction), 'data.test_split',
         'names the test split; leave data.test_fraction at 0')
  _check(config.init_from or config.model.pretrained or not config.init_freeze, 'init_freeze',
         'freezes pretrained layers: set init_from (the run to start from) or model.pretrained '
         'too')
  if config.init_freeze:
    models.section.expand_frozen(config.model, config.init_freeze)  # names the modules it knows
  _check(not (config.init_from and config.model.pretrained), 'model.pretrained',
         f'{config.model.pretrained!r} and init_from={config.init_from!r} both name the starting '
         'weights; set one')
  _fraction(config, 'label_smoothing', True, False)
  _fraction(config, 'ema_decay', True, False, ' (0 disables)')
  _fraction(config, 'plateau.factor', False, False)
  _fraction(config, 'data.val_fraction', False, False)
  _fraction(config, 'data.test_fraction', True, False, ' (0: no test split)')
  _check(0 <= config.data.alpha_background <= 255, 'data.alpha_background',
         f'must be a grey level in [0, 255], got {config.data.alpha_background!r}')
  _check(config.data.kfold == 0 or config.data.kfold >= 2, 'data.kfold',
         f'must be 0 (off) or >= 2, got {config.data.kfold!r}')
  _check(-1 <= config.data.fold < max(config.data.kfold, 1) or config.data.kfold == 0,
         'data.fold', f'must be -1 or in [0, {config.data.kfold}), got {config.data.fold!r}')
  _check(config.data.duplicate_threshold <= 32, 'data.duplicate_threshold',
         f'{config.data.duplicate_threshold} of 64 bits would merge unrelated photos; use <= 32')
  _check(config.warmup_epochs <= config.num_epochs or config.adapt_to_data, 'warmup_epochs',
         f'{config.warmup_epochs} exceeds num_epochs={config.num_epochs} (lower it, or set '
         'adapt_to_data=True to cap it)')
  _choice(config, 'schedule', optim.SCHEDULES)
  _choice(config, 'eval.test_time_flip', TEST_TIME_FLIP_OVERRIDES)
  _choice(config, 'eval.split', EVAL_SPLITS)
  _choice(config, 'eval.label_issues_method', label_issues.METHODS)
  _check(not (config.eval.dir and config.eval.split == 'test'), 'eval.split',
         'test evaluates the run\'s saved test split; with eval.dir set, leave eval.split=val')
  _choice(config, 'data.interpolation', tuple(imageio.RESAMPLE))
  _choice(config, 'data.aspect', imageio.ASPECTS)
  models.section.validate(config)
  _validate_features(config)
  _validate_augment(config)


def _validate_features(config) -> None:
  f = config.features
  _positive(config, 'features.passes')
  _positive(config, 'features.batch_size')
  if not f.enabled:
    return
  _check(config.model.pretrained or config.init_from, 'features.enabled',
         'trains the head on a fixed, pretrained backbone: set model.pretrained (e.g. imagenet) or '
         'init_from')
  _check(config.init_freeze in ('', 'all'), 'init_freeze',
         f'{config.init_freeze!r}: features.enabled freezes every module but the head already; '
         'leave init_freeze empty')
  _check(not (config.augment.mixup_alpha or config.augment.cutmix_alpha), 'augment.mixup_alpha',
         'mixup and CutMix blend images, not cached features; set both alphas to 0 with '
         'features.enabled')
  _check(not config.test_time_flip, 'test_time_flip',
         'is not computed from cached features; turn it off with features.enabled (evaluate with '
         '--config.eval.test_time_flip=on later)')
  if f.passes > 1:
    _check(config.augment.preset in presets.DEVICE_PRESETS and config.augment.preset != 'none',
           'features.passes',
           f'{f.passes} passes augment the training images with augment.preset\'s device '
           f'version; {config.augment.preset!r} has none that changes the images (device presets: '
           f'{presets.DEVICE_PRESETS})')


def _validate_augment(config) -> None:
  a = config.augment
  _choice(config, 'augment.where', presets.WHERE)
  _choice(config, 'data.where', presets.WHERE)
  _check(config.data.where == 'host' or a.where == 'device' or a.preset == 'none', 'data.where',
         f'data.where=device keeps the images on the devices, so the host cannot augment them '
         f'(augment.where=host, preset {a.preset!r}); use --config.augment.where=device, or '
         'data.where=host')
  _choice(config, 'augment.preset', tuple(presets.PRESETS))
  for knob in presets.all_knobs():
    value = repr(a[knob.name])
    _check(knob.valid(a[knob.name]), f'augment.{knob.name}',
           f'must be {knob.valid_range}, got {value if len(value) <= 60 else value[:57] + "..."}')
  if a.where == 'device':
    _check(a.preset in presets.DEVICE_PRESETS, 'augment.preset',
           f'{a.preset!r} has no device implementation (device presets: '
           f'{presets.DEVICE_PRESETS}); use augment.where=host')
    return
  try:  # the host path: build the Albumentations pipeline once (custom transforms are parsed)
    presets.host_pipeline(presets.spec_from_config(a), config.data.image_size)
  except (ValueError, TypeError, SyntaxError) as e:
    raise ConfigError(f'config.augment: {e}') from e
