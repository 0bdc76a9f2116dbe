"""rockjax from Python (a notebook, a service): train a run, load it, predict, evaluate, export.

    import rockjax.api as rj
    summary = rj.train('configs/rocks.py', 'runs/mine', data__dir='photos/', num_epochs=20)
    model = rj.load('runs/mine')
    result = model.predict(['belt/0001.jpg', pil_image, uint8_array])
    for name, confidence in zip(result.classes, result.confidence):
      print(name, confidence)

Each function is the command line's mode of the same name (main.py), with the same config and
the same errors (rockjax.errors.UserError and its kinds); nothing here is needed by the command line.
Overrides are keyword arguments, with '__' for the dots of --config.<key> (data__dir='photos/').
"""

from __future__ import annotations

import dataclasses
import os

import ml_collections
import numpy as np
from PIL import Image

from rockjax import cli, configlib, logs, schema
from rockjax.data import imageio
from rockjax.serving import predictor as predictors

logs.quiet_libraries()  # from Python too: no Orbax "read only" warnings on every load


def config(config_file_or_dict='configs/residual.py', **overrides) -> ml_collections.ConfigDict:
  """A validated config: a config file (with its ':arg'), or a ConfigDict, plus overrides."""
  if isinstance(config_file_or_dict, (str, os.PathLike)):
    c = configlib.load_config_file(os.fspath(config_file_or_dict))
  else:
    c = schema.with_defaults(ml_collections.ConfigDict(config_file_or_dict))
  for key, value in overrides.items():
    configlib.set_value(c, key.replace('__', '.'), value)
  schema.validate(c)
  return c


def train(config_file_or_dict='configs/residual.py', workdir: str | None = None,
          **overrides) -> dict:
  """Trains (or resumes) a run into `workdir` (default runs/<hash of the config>); its summary."""
  c = config(config_file_or_dict, **overrides)
  return cli.run_training(c, workdir or cli.default_workdir(c, stem='api'))


def _section(name: str, overrides: dict) -> ml_collections.ConfigDict:
  """The config's `name` section (eval, predict, export) with overrides, validated."""
  c = schema.base_config()
  for key, value in overrides.items():
    configlib.set_value(c[name], key.replace('__', '.'), value)
  schema.validate(c)
  return c[name]


def evaluate(workdir: str, **eval_overrides) -> dict:
  """--mode=eval on the run: its report (also written to <workdir>/eval)."""
  from rockjax.serving import evaluation
  return evaluation.evaluate_workdir(workdir, _section('eval', eval_overrides))


def export(workdir: str, **export_overrides) -> str:
  """--mode=export on the run (formats='saved_model,tflite', ...): the export folder."""
  from rockjax.serving import export as exporting
  return exporting.export_workdir(workdir, _section('export', export_overrides))


@dataclasses.dataclass
class Predictions:
  classes: list[str]  # the top-1 class of each input
  probabilities: np.ndarray  # [inputs, classes]
  class_names: list[str]

  @property
  def confidence(self) -> np.ndarray:
    return self.probabilities.max(axis=1)

  def __len__(self) -> int:
    return len(self.classes)


class Model:
  """A trained run's best checkpoint, ready to predict (rockjax.api.load)."""

  def __init__(self, predictor: predictors.Predictor):
    self.predictor = predictor
    self.class_names = list(predictor.class_names)

  def pixels(self, inputs) -> np.ndarray:
    """uint8 [N, size, size, 3]: the inputs read and resized exactly as training read photos."""
    if isinstance(inputs, (str, os.PathLike, Image.Image)) or (
        isinstance(inputs, np.ndarray) and inputs.ndim in (2, 3)):
      inputs = [inputs]
    return np.stack([self._one(x) for x in inputs]) if len(inputs) else np.zeros(
        (0, self.predictor.image_size, self.predictor.image_size, 3), np.uint8)

  def _one(self, x) -> np.ndarray:
    o = self.predictor.read_options
    if isinstance(x, (str, os.PathLike)):
      return imageio.load_image(os.fspath(x), o.image_size, o.interpolation, o.aspect,
                                o.background)
    if isinstance(x, np.ndarray):
      if x.dtype != np.uint8 or x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] not in (1, 3,
                                                                                          4)):
        raise ValueError(f'an image array must be uint8 [height, width] or [height, width, 1|3|4]'
                         f' (RGB order), got {x.dtype} {x.shape}')
      x = Image.fromarray(x[..., 0] if x.ndim == 3 and x.shape[2] == 1 else x)
    if not isinstance(x, Image.Image):
      raise TypeError(f'predict takes paths, PIL images or uint8 arrays, got {type(x).__name__}')
    rgb = imageio.to_rgb(x, o.background)
    return np.asarray(imageio.resize(rgb, o.image_size, o.interpolation, o.aspect), np.uint8)

  def predict(self, inputs, batch_size: int = 256) -> Predictions:
    """Class probabilities for a path, a PIL image, a uint8 array, or a list of them (any mix,
    any size; files unreadable as images raise imageio.BadImage naming the reason)."""
    probabilities = self.predictor.probabilities(self.pixels(inputs), batch_size)
    return Predictions(classes=[self.class_names[i] for i in probabilities.argmax(axis=1)],
                       probabilities=probabilities, class_names=self.class_names)


def metrics(workdir: str) -> list[dict]:
  """A run's (or one fold's) per-epoch records from its metrics.jsonl (epoch, train and validation
  loss and accuracy, learning rate, seconds, images/s...), one per epoch, unreadable lines skipped;
  [] before the first epoch ends."""
  from rockjax.training import history
  return history.History(os.path.join(workdir, 'metrics.jsonl')).read()


def decode_folder(config_file_or_dict, out: str, **overrides):
  """Decodes the photo folder `data.dir` once, with the config's preprocessing, into the `.npz`
  file `out` (train on it with data.dir=out and the same preprocessing: the same images, splits
  and folds). Returns the ImageSet written (images, labels, paths, class_names)."""
  from rockjax.data import dataset as datasets
  return datasets.decode_folder(config(config_file_or_dict, **overrides).data, out)


def load(workdir: str) -> Model:
  """The run's best checkpoint (its EMA weights when it kept them) and its own preprocessing."""
  return Model(predictors.load_predictor(workdir, calibrated=True))
