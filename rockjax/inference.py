"""A trained run as a predictor: the best checkpoint plus the preprocessing saved with it.

`load_predictor(workdir)` reads the run's own `config.json` and `class_names.json` (not the command
line's config), restores the best checkpoint's parameters and BatchNorm statistics, and returns a
`Predictor` whose jitted `probabilities` maps uint8 images of the trained size to class probabilities.
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

from rockjax import checkpointing, configlib, folder, models, optim, steps


@dataclasses.dataclass
class Predictor:
  config: ml_collections.ConfigDict  # the run's resolved config
  class_names: list[str]
  model: object
  variables: dict  # {'params': ..., 'batch_stats': ...}
  epoch: int  # the epoch of the restored (best) checkpoint

  @property
  def image_size(self) -> int:
    return self.config.data.image_size

  @property
  def read_options(self) -> folder.ReadOptions:
    return folder.ReadOptions.from_config(self.config.data)

  @functools.cached_property
  def _probabilities(self):
    return jax.jit(self.predict_fn())

  def probabilities(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities [N, K] for uint8 images [N, H, W, 3], in fixed-size (padded) batches."""
    images = np.asarray(images)
    expected = (self.image_size, self.image_size, 3)
    if images.ndim != 4 or images.shape[1:] != expected:
      raise ValueError(f'expected images of shape [N, {expected[0]}, {expected[1]}, 3], got '
                       f'{images.shape}')
    out = []
    for start in range(0, len(images), batch_size):
      chunk = images[start:start + batch_size]
      n = len(chunk)
      if n < batch_size and len(images) > batch_size:  # keep one compiled shape for big inputs
        chunk = np.concatenate([chunk, np.zeros((batch_size - n,) + expected, chunk.dtype)])
      out.append(np.asarray(self._probabilities(self.variables, chunk))[:n])
    if not out:
      return np.zeros((0, len(self.class_names)), np.float32)
    return np.concatenate(out)

  def predict_fn(self):
    """(variables, images) -> probabilities, jittable and exportable."""
    apply = self.model.apply
    return lambda variables, images: jax.nn.softmax(
        apply(variables, images, train=False).astype(jnp.float32), axis=-1)


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise checkpointing.NoCheckpointError(
        f'{workdir!r} holds no training run (no config.json); train first with --mode=train '
        'and the same --workdir')
  return configlib.load(path)


def load_class_names(workdir: str) -> list[str]:
  path = os.path.join(workdir, 'class_names.json')
  if not os.path.exists(path):
    raise checkpointing.NoCheckpointError(f'{workdir!r} has no class_names.json')
  with open(path) as f:
    return json.load(f)


def abstract_train_state(config, num_classes: int):
  """A train state with the run's structure, to restore a checkpoint into."""
  model = models.create_model(config.model, num_classes)
  tx = optim.create_optimizer(config, optim.learning_rate_schedule(config, 1))
  state = steps.create_train_state(model, tx, jax.random.PRNGKey(0), config.data.image_size)
  return model, state


def load_predictor(workdir: str) -> Predictor:
  config = load_run_config(workdir)
  class_names = load_class_names(workdir)
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True)
  try:
    model, state = abstract_train_state(config, len(class_names))
    state, loop = ckpt.restore_best(state)
  finally:
    ckpt.close()
  variables = {'params': state.params, 'batch_stats': state.batch_stats}
  return Predictor(config=config, class_names=class_names, model=model, variables=variables,
                   epoch=int(loop['epoch']))
