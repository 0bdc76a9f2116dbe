"""The config: shared defaults for every `configs/*.py`, validation, and saving with a run.

The config is the single source of truth for every tunable. `base_config()` holds the defaults that
`configs/residual.py` and `configs/baseline.py` start from; `validate(config)` turns a bad value into
a `ConfigError` that names the key; `to_json`/`from_json` store the resolved config in a workdir.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import math
import os
from typing import Any

import ml_collections

from rockjax import fileio
from rockjax.models import MODEL_NAMES, num_downsamplings

SCHEDULES = ('constant', 'warmup_cosine', 'plateau')
INTERPOLATIONS = ('nearest', 'bilinear', 'bicubic', 'lanczos', 'area')
ASPECTS = ('stretch', 'center_crop')
AUGMENT_WHERE = ('host', 'device')


class ConfigError(ValueError):
  """A config value is missing, unknown or out of range; the message names the key."""


def base_config() -> ml_collections.ConfigDict:
  """Defaults shared by all configs; they reproduce the reference residual recipe."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.num_epochs = 60
  c.batch_size = 32  # global: split over all devices of all processes
  c.eval_batch_size = 256  # global
  c.num_devices = 0  # local devices to use; 0 means all of them
  c.learning_rate = 1e-4
  c.weight_decay = 0.0  # > 0 selects AdamW (decoupled weight decay)
  c.adam_b1 = 0.9
  c.adam_b2 = 0.999
  c.adam_eps = 1e-7  # Keras' default epsilon
  c.label_smoothing = 0.0
  c.grad_clip_norm = 0.0  # 0 disables clipping
  c.schedule = 'plateau'  # constant | warmup_cosine | plateau
  c.warmup_epochs = 0.0
  c.cosine_final_fraction = 0.0  # final lr of warmup_cosine, as a fraction of learning_rate
  c.plateau = ml_collections.ConfigDict(dict(
      factor=0.5, patience=3, min_lr=1e-5, min_delta=1e-4))  # Keras ReduceLROnPlateau on val loss
  c.early_stopping_patience = 10  # epochs without a val-accuracy gain; 0 disables
  c.log_every_steps = 0  # extra within-epoch log lines; 0 means only per-epoch lines
  c.checkpoint_every_epochs = 1
  c.ema_decay = 0.0  # > 0 (e.g. 0.99): evaluate, keep and export a moving average of the weights
  c.test_time_flip = False  # average each image's class probabilities with its mirror image's
  c.distributed = False  # True: jax.distributed.initialize() (multi-host); see rockjax/distributed.py

  c.model = ml_collections.ConfigDict()
  c.model.name = 'ResidualCNN'  # ResidualCNN | SeedCNN
  c.model.widths = (32, 64, 128, 256)  # stage widths (SeedCNN: block widths)
  c.model.stem_features = 16
  c.model.stem_kernel = 7
  c.model.convs_per_stage = 3
  c.model.kernel_size = 3
  c.model.shortcut_kernels = (5, 3, 3, 3)  # one per stage
  c.model.block_kernels = (7, 5, 3)  # SeedCNN: one per block
  c.model.dropout = 0.2
  c.model.block_order = 'relu_bn'  # reference: Conv -> ReLU -> BN; or bn_relu: Conv -> BN -> ReLU
  c.model.bn_momentum = 0.99
  c.model.bn_epsilon = 1e-3
  c.model.sync_batchnorm = True  # batch statistics over the global batch (all devices)
  c.model.dtype = 'float32'  # float32 | bfloat16 (compute dtype; parameters stay float32)
  c.model.conv_impl = 'auto'  # auto | xla | matmul: how convolutions are computed (same params)

  c.data = ml_collections.ConfigDict()
  c.data.dir = ''  # a folder with one sub-folder per class; '' means the generated default set
  c.data.image_size = 32
  c.data.val_fraction = 0.25
  c.data.interpolation = 'nearest'  # the reference's resize; see INTERPOLATIONS
  c.data.aspect = 'stretch'  # stretch (reference) | center_crop
  c.data.cache_dir = ''  # '' means $ROCKJAX_CACHE_DIR or ~/.cache/rockjax
  c.data.deterministic = True  # order-preserving parallel input pipeline
  c.data.extensions = 'jpg,jpeg,jpe,jfif,png,bmp,tif,tiff,webp,gif'  # any case; gif: 1st frame
  c.data.alpha_background = 255  # grey level that transparent pixels are composited onto
  c.data.allow_empty_classes = False  # True: drop class folders with no usable image (warning)
  c.data.read_workers = 0  # decoding threads; 0 means one per CPU core
  c.data.group_duplicates = True  # keep copies of a photo on one side of every split and fold
  c.data.duplicate_threshold = 4  # dHash bits (of 64) for near-duplicates; -1: exact copies only
  c.data.kfold = 0  # K > 1: stratified K-fold cross-validation (one run per fold)
  c.data.fold = -1  # with kfold: -1 runs every fold; 0..K-1 trains just that fold
  c.data.split_from = ''  # a run's workdir (k-fold: its root): reuse its saved split(s) exactly
  c.data.synthetic = ml_collections.ConfigDict(dict(
      num_per_class=500, image_size=64, seed=0))

  c.augment = ml_collections.ConfigDict()
  c.augment.preset = 'flip_bright'  # none | flip | crop | flip_bright | strong | custom
  c.augment.custom = ''  # for preset=custom: 'HorizontalFlip(p=0.5); RandomRotate90(p=0.5)'
  c.augment.where = 'host'  # host: Albumentations in tf.data | device: jax.random in the train step
  c.augment.mixup_alpha = 0.0  # > 0: mixup with lam ~ Beta(alpha, alpha), in the train step
  c.augment.cutmix_alpha = 0.0  # > 0: cutmix (both > 0: one of the two per step, p=0.5 each)
  # The `strong` preset's parts, one knob each (host and device paths alike):
  c.augment.crop_min_scale = 0.35  # random resized crops keep 35-100% of the area; 1.0: no crop
  c.augment.rotate90 = True  # random multiples of 90 degrees (besides the two flips)
  c.augment.colour_jitter = 0.2  # brightness/contrast/saturation +-20% (hue +-2%), p=0.8; 0: off

  c.eval = ml_collections.ConfigDict()  # --mode=eval
  c.eval.dir = ''  # a class-per-folder set to evaluate on; '' means the run's saved val split
  c.eval.batch_size = 256
  c.eval.num_errors_shown = 24  # most confidently wrong images in eval/most_confident_errors.png
  c.eval.test_time_flip = 'run'  # run: as the run was trained | on | off: override, for this eval

  c.predict = ml_collections.ConfigDict()  # --mode=predict
  c.predict.batch_size = 256
  c.predict.latency_runs = 200  # batch-1 calls timed for the latency report; 0 skips timing

  c.preview = ml_collections.ConfigDict()  # --mode=preview
  c.preview.per_class = 2
  c.preview.versions = 5
  return c


def _check(ok: bool, key: str, message: str) -> None:
  if not ok:
    raise ConfigError(f'config.{key}: {message}')


def _choice(config, key: str, choices) -> None:
  value = get_value(config, key)
  _check(value in choices, key, f'{value!r} is not one of {tuple(choices)}')


def _positive(config, key: str, allow_zero: bool = False) -> None:
  value = get_value(config, key)
  ok = value >= 0 if allow_zero else value > 0
  _check(ok and math.isfinite(value), key,
         f'must be {"non-negative" if allow_zero else "positive"}, got {value!r}')


def get_value(config, key: str) -> Any:
  value = config
  for part in key.split('.'):
    value = value[part]
  return value


def set_value(config: ml_collections.ConfigDict, key: str, value) -> None:
  """config.<dotted key> = value (the field must exist)."""
  *parents, leaf = key.split('.')
  node = config
  for part in parents:
    node = node[part]
  node[leaf] = value


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first key whose value cannot work."""
  for key in ('num_epochs', 'batch_size', 'eval_batch_size', 'learning_rate',
              'data.image_size', 'model.bn_momentum', 'model.bn_epsilon',
              'checkpoint_every_epochs', 'data.synthetic.num_per_class',
              'data.synthetic.image_size'):
    _positive(config, key)
  for key in ('num_devices', 'weight_decay', 'label_smoothing', 'grad_clip_norm', 'warmup_epochs',
              'early_stopping_patience', 'log_every_steps', 'data.read_workers',
              'plateau.patience', 'plateau.min_lr', 'plateau.min_delta',
              'cosine_final_fraction', 'eval.num_errors_shown', 'predict.latency_runs'):
    _positive(config, key, allow_zero=True)
  for key in ('eval.batch_size', 'predict.batch_size', 'preview.per_class', 'preview.versions'):
    _positive(config, key)
  _check(0.0 <= config.model.dropout < 1.0, 'model.dropout',
         f'must be in [0, 1), got {config.model.dropout!r}')
  _check(0.0 <= config.label_smoothing < 1.0, 'label_smoothing',
         f'must be in [0, 1), got {config.label_smoothing!r}')
  _check(0.0 <= config.ema_decay < 1.0, 'ema_decay',
         f'must be in [0, 1) (0 disables), got {config.ema_decay!r}')
  for key in ('augment.mixup_alpha', 'augment.cutmix_alpha'):
    _positive(config, key, allow_zero=True)
  _check(0.0 < config.augment.crop_min_scale <= 1.0, 'augment.crop_min_scale',
         f'must be in (0, 1] (1 turns the crop off), got {config.augment.crop_min_scale!r}')
  _check(0.0 <= config.augment.colour_jitter < 1.0, 'augment.colour_jitter',
         f'must be in [0, 1) (0 turns it off), got {config.augment.colour_jitter!r}')
  _check(0.0 < config.plateau.factor < 1.0, 'plateau.factor',
         f'must be in (0, 1), got {config.plateau.factor!r}')
  _check(0 <= config.data.alpha_background <= 255, 'data.alpha_background',
         f'must be a grey level in [0, 255], got {config.data.alpha_background!r}')
  _check(0.0 < config.data.val_fraction < 1.0, 'data.val_fraction',
         f'must be in (0, 1), got {config.data.val_fraction!r}')
  _check(config.data.kfold == 0 or config.data.kfold >= 2, 'data.kfold',
         f'must be 0 (off) or >= 2, got {config.data.kfold!r}')
  _check(-1 <= config.data.fold < max(config.data.kfold, 1) or config.data.kfold == 0,
         'data.fold', f'must be -1 or in [0, {config.data.kfold}), got {config.data.fold!r}')
  _check(config.data.duplicate_threshold <= 32, 'data.duplicate_threshold',
         f'{config.data.duplicate_threshold} of 64 bits would merge unrelated photos; use <= 32')
  _check(config.warmup_epochs <= config.num_epochs, 'warmup_epochs',
         f'{config.warmup_epochs} exceeds num_epochs={config.num_epochs}')
  _choice(config, 'schedule', SCHEDULES)
  _choice(config, 'model.name', MODEL_NAMES)
  _choice(config, 'model.block_order', ('relu_bn', 'bn_relu'))
  _choice(config, 'model.dtype', ('float32', 'bfloat16'))
  _choice(config, 'model.conv_impl', ('auto', 'xla', 'matmul'))
  _choice(config, 'eval.test_time_flip', ('run', 'on', 'off'))
  _choice(config, 'data.interpolation', INTERPOLATIONS)
  _choice(config, 'data.aspect', ASPECTS)
  m = config.model
  _check(len(m.widths) > 0 and all(w > 0 for w in m.widths), 'model.widths',
         f'needs positive widths, got {tuple(m.widths)}')
  if m.name == 'ResidualCNN':
    _check(len(m.shortcut_kernels) == len(m.widths), 'model.shortcut_kernels',
           f'needs one kernel per stage ({len(m.widths)} widths), got {tuple(m.shortcut_kernels)}')
    _positive(config, 'model.convs_per_stage')
  else:
    _check(len(m.block_kernels) == len(m.widths), 'model.block_kernels',
           f'needs one kernel per block ({len(m.widths)} widths), got {tuple(m.block_kernels)}')
  min_size = 2 ** num_downsamplings(m)
  _check(config.data.image_size >= min_size, 'data.image_size',
         f'{config.data.image_size} px is too small for {m.name} with {len(m.widths)} stages, '
         f'which halves the image {num_downsamplings(m)} times (minimum {min_size} px)')
  _choice(config, 'augment.where', AUGMENT_WHERE)
  if config.augment.where == 'device':
    from rockjax import device_augment
    _check(config.augment.preset in device_augment.PRESETS, 'augment.preset',
           f'{config.augment.preset!r} has no device implementation (device presets: '
           f'{device_augment.PRESETS}); use augment.where=host')
  from rockjax import augment  # local import: augment pulls in albumentations and OpenCV
  try:
    augment.build_host_pipeline(config.augment, config.data.image_size)
  except (ValueError, TypeError, SyntaxError) as e:
    raise ConfigError(f'config.augment: {e}') from e


def to_json(config: ml_collections.ConfigDict) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=list)


def save(config: ml_collections.ConfigDict, path: str) -> None:
  """Writes the resolved config as JSON, atomically (a crash never leaves half a file)."""
  fileio.write_json(path, config.to_dict(), sort_keys=True, default=list)


def load(path: str) -> ml_collections.ConfigDict:
  """A saved config, with any field added to rockjax since it was saved set to its default (which
  is how the run behaved: new fields default to the old behaviour)."""
  with open(path) as f:
    return with_defaults(ml_collections.ConfigDict(json.load(f)))


def with_defaults(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`config` plus every field of base_config() that it lacks, at the default value."""
  merged = base_config()
  merged.update(config)  # recursive for nested ConfigDicts
  return merged


def differences(a: ml_collections.ConfigDict, b: ml_collections.ConfigDict,
                ignore: tuple[str, ...] = ()) -> list[str]:
  """Dotted keys whose values differ between two configs (lists and tuples compare equal)."""
  fa, fb = _flatten(json.loads(to_json(a))), _flatten(json.loads(to_json(b)))
  keys = sorted(set(fa) | set(fb))
  return [k for k in keys if fa.get(k) != fb.get(k)
          and not any(k == i or k.startswith(i + '.') for i in ignore)]


def _flatten(d: dict, prefix: str = '') -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def load_config_file(path: str) -> ml_collections.ConfigDict:
  """`get_config()` of a config file given by path (as --config=path[:arg] names it)."""
  path, _, arg = path.partition(':')
  spec = importlib.util.spec_from_file_location('rockjax_config_file', path)
  if spec is None or not os.path.exists(path):
    raise ConfigError(f'config file {path!r} does not exist')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def unknown_key_message(config: ml_collections.ConfigDict, dotted: str) -> str | None:
  """Why `config.<dotted>` does not exist (with close matches), or None if it does."""
  node, walked = config, []
  for part in dotted.split('.'):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      siblings = list(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
      close = difflib.get_close_matches(part, siblings, n=3)
      where = 'config.' + '.'.join(walked) if walked else 'config'
      hint = f'; did you mean {", ".join(repr(c) for c in close)}?' if close else ''
      return (f'unknown config key config.{dotted}: {where} has no field {part!r}{hint} '
              f'(fields: {", ".join(sorted(siblings))})')
    node = node[part]
    walked.append(part)
  return None


def check_override_keys(argv: list[str]) -> str | None:
  """The first `--config.<key>=...` of argv that names no field of the config file, explained."""
  config_path = None
  overrides = []
  for i, arg in enumerate(argv):
    if arg.startswith('--config='):
      config_path = arg.split('=', 1)[1]
    elif arg == '--config' and i + 1 < len(argv):
      config_path = argv[i + 1]
    elif arg.startswith('--config.'):
      overrides.append(arg[len('--config.'):].split('=', 1)[0])
  if not config_path or not overrides:
    return None
  config = load_config_file(config_path)
  for key in overrides:
    message = unknown_key_message(config, key)
    if message:
      return message
  return None
