"""A trained run as a predictor: the best checkpoint plus the preprocessing saved with it.

`load_predictor(workdir)` reads the run's own `config.json` and `class_names.json` (not the command
line's config), restores the best (or latest) checkpoint's parameters and BatchNorm statistics (their moving
averages when the run kept them, config.ema_decay > 0), and returns a `Predictor` whose jitted
`probabilities` maps uint8 images of the trained size to class probabilities.
Evaluation, prediction and export all start here, so they see the model exactly as it was trained.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from rockjax import models, schema
from rockjax.data import batching, folder
from rockjax.errors import NoCheckpointError
from rockjax.serving import calibration, section
from rockjax.training import checkpointing, state as states, steps


@dataclasses.dataclass
class Predictor:
  config: ml_collections.ConfigDict  # the run's resolved config
  class_names: list[str]
  model: object
  variables: dict  # {'params': ..., 'batch_stats': ...}
  epoch: int  # the epoch of the restored checkpoint
  # Which checkpoint `epoch` is: 'the best checkpoint', 'the latest checkpoint', or why it is
  # another (the best one gone).
  checkpoint: str = 'the best checkpoint'
  temperature: float = 1.0  # probabilities are softmax(log p / T) (serving/calibration.py)

  @property
  def image_size(self) -> int:
    return self.config.data.image_size

  @property
  def read_options(self) -> folder.ReadOptions:
    return folder.ReadOptions.from_config(self.config.data)

  @functools.cached_property
  def _probabilities(self):
    """images -> probabilities, jitted with the variables closed over: XLA compiles them in as
    constants, which cuts batch-1 latency on CPU by ~12% against passing them as arguments
    (BENCHMARKS.md). One compilation per input batch shape."""
    fn, variables = self.predict_fn(), self.variables
    return jax.jit(lambda images: fn(variables, images))

  def probabilities(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities [N, K] for uint8 images [N, H, W, 3]. Up to `batch_size` images go
    through in one call; more are cut into batches of `batch_size` (the last one padded, so that
    big inputs compile one shape)."""
    images = np.asarray(images)
    expected = (self.image_size, self.image_size, 3)
    if images.ndim != 4 or images.shape[1:] != expected:
      raise ValueError(f'expected images of shape [N, {expected[0]}, {expected[1]}, 3], got '
                       f'{images.shape}')
    if len(images) == 0:
      return np.zeros((0, len(self.class_names)), np.float32)
    if len(images) <= batch_size:  # the latency path: one call, no copies
      return np.asarray(self._probabilities(images))
    return np.concatenate([np.asarray(self._probabilities(chunk))[:n]
                           for chunk, n in batching.padded_chunks(images, batch_size)])

  def with_test_time_views(self, flip: bool | None = None,
                           rotate: bool | None = None) -> 'Predictor':
    """The same model, scoring with (or without) the mirror image (`flip`) and the three quarter
    turns (`rotate`) averaged in; None keeps the run's own setting."""
    config = ml_collections.ConfigDict(self.config.to_dict())
    if flip is not None:
      config.test_time_flip = bool(flip)
    if rotate is not None:
      config.test_time_rotate = bool(rotate)
    return dataclasses.replace(self, config=config)

  @property
  def test_time_settings(self) -> dict:
    """The test-time views as the reports record them."""
    return dict(test_time_flip=bool(self.config.test_time_flip),
                test_time_rotate=bool(self.config.test_time_rotate))

  @property
  def test_time_views(self) -> str:
    """The test-time views averaged, in words ('' for the image alone)."""
    flip, rotate = bool(self.config.test_time_flip), bool(self.config.test_time_rotate)
    return {(True, True): 'flips and rotations (8 views)', (True, False): 'flips (2 views)',
            (False, True): 'rotations (4 views)'}.get((flip, rotate), '')

  def with_standard_ops(self) -> 'Predictor':
    """The same weights in a model computed with the standard convolution ops (model.conv_impl
    and model.depthwise_impl 'xla') and BatchNorm as one multiply-add that converters fold into
    the conv (model.fold_batchnorm): what TFLite export converts, whatever the run trained with."""
    config = ml_collections.ConfigDict(self.config.to_dict())
    config.model.conv_impl = config.model.depthwise_impl = 'xla'
    config.model.fold_batchnorm = True
    return dataclasses.replace(self, config=config,
                               model=models.create_model(config.model, len(self.class_names)))

  def for_export(self) -> 'Predictor':
    """The same weights computed with the standard dense convolution op, and depthwise
    convolutions chosen where the exported program runs (the fast shifted form on CPU, the
    standard grouped op on GPUs): what the SavedModel holds."""
    config = ml_collections.ConfigDict(self.config.to_dict())
    config.model.conv_impl, config.model.depthwise_impl = 'xla', 'platform'
    return dataclasses.replace(self, config=config,
                               model=models.create_model(config.model, len(self.class_names)))

  def predict_fn(self):
    """(variables, images) -> probabilities, jittable and exportable (with the run's test-time
    views: averaged over each image's mirror image and quarter turns, as configured)."""
    apply, flip, t = self.model.apply, bool(self.config.test_time_flip), float(self.temperature)
    rotate = bool(self.config.test_time_rotate)

    def fn(variables, images):
      log_probs = steps.class_log_probs(apply, variables, images, flip, rotate)
      return jnp.exp(log_probs if t == 1.0 else jax.nn.log_softmax(log_probs / t))
    return fn


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise NoCheckpointError(
        f'{workdir!r} holds no training run (no config.json); train first with --mode=train '
        'and the same --workdir')
  return schema.load(path)


def load_class_names(workdir: str) -> list[str]:
  path = os.path.join(workdir, 'class_names.json')
  if not os.path.exists(path):
    raise NoCheckpointError(f'{workdir!r} has no class_names.json')
  with open(path) as f:
    return json.load(f)


def load_predictor(workdir: str, calibrated: bool = False, checkpoint: str = 'best') -> Predictor:
  """The run's best (or latest: its final epoch, once finished) checkpoint; with `calibrated`,
  scaled by the temperature that --mode=eval fitted on its validation split for that epoch
  (calibration.json), when there is one."""
  if checkpoint not in section.CHECKPOINTS:
    raise ValueError(f'checkpoint {checkpoint!r} is not one of {section.CHECKPOINTS}')
  config = load_run_config(workdir)
  class_names = load_class_names(workdir)
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True)
  try:
    model, state = states.abstract_train_state(config, len(class_names))
    restore = ckpt.restore_best if checkpoint == 'best' else ckpt.restore_newest
    state, loop = restore(state)
  finally:
    ckpt.close()
  variables = states.inference_variables(state)  # the EMA weights when the run kept them
  epoch = int(loop['epoch'])
  temperature = calibration.read_temperature(workdir, epoch) if calibrated else None
  return Predictor(config=config, class_names=class_names, model=model, variables=variables,
                   epoch=epoch, temperature=temperature or 1.0,
                   checkpoint=('the latest checkpoint' if checkpoint == 'latest'
                               else describe_checkpoint(loop)))


def describe_checkpoint(loop: dict) -> str:
  """'the best checkpoint', unless the run's own record names another best epoch, whose checkpoint
  is gone (a removed folder): then Orbax's best of what is left is a different epoch, and says so."""
  epoch, best = int(loop['epoch']), int(loop.get('early_stopping', {}).get('best_epoch', 0))
  if not best or best == epoch:
    return 'the best checkpoint'
  logging.warning('The best checkpoint (epoch %d, as the run recorded it) is missing; using the '
                  'checkpoint of epoch %d, the best of those left.', best, epoch)
  return f'the checkpoint of epoch {epoch} (the best, epoch {best}, is missing)'

