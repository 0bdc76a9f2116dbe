"""Screening the training labels (config.label_screen): photos that are probably mislabelled, or
not photos of the task at all, are left out of training before it starts.

Web-gathered photo sets carry wrong labels and off-task pictures (rock7: diagrams, a Rosetta Stone
in Basalt). The screen scores every training photo with a model that never saw its label: each
photo is read from its file at `label_screen.image_size`, a frozen ImageNet network
(`label_screen.network`) turns it (averaged with its mirror image) into pooled features, and the
training split is cut into `label_screen.folds` stratified parts; a logistic-regression head
fitted on the other parts (standardised features, L2 penalty, L-BFGS) gives each part's class
probabilities. Confident learning (serving/label_issues.py, `label_screen.method`) flags photos
from those, ranked by the margin p_suggested - p_given, and the first `drop_fraction` of the
training split are left out (never more than half of any class).

Only the training split is screened: validation and test photos are never looked at, so a
screened run is judged on the same images as an unscreened one, and in k-fold runs each fold
screens its own training split. What was left out is written to `<workdir>/label_screen.csv` and
`label_screen.png` (for a person to review), with `label_screen.json`, which a resumed run reads
instead of screening again (keyed by the settings, the preprocessing and the photos: their paths,
labels and decoded pixels).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from rockjax import fileio, pretrained
from rockjax.data import batching, dataset as datasets, folder, imageio
from rockjax.errors import ConfigError, DataError
from rockjax.serving import label_issues

RECORD = 'label_screen.json'


def screen(config, dataset: datasets.Dataset, workdir: str, is_main: bool) -> datasets.Dataset:
  """`dataset` with its training split screened (unchanged when label_screen.drop_fraction is 0)."""
  s = config.label_screen
  if not s.drop_fraction:
    return dataset
  train = dataset.train
  key = cache_key(config, train)
  record = _read_record(os.path.join(workdir, RECORD), key)
  if record is None:
    record, issues = _screen(config, train, dataset.class_names)
    if is_main:
      _write(workdir, record, train, issues, dataset.class_names, key)
  dropped = set(record['dropped'])
  keep = [i for i, p in enumerate(train.paths) if p not in dropped]
  logging.info('label_screen: %d of %d training photos left out as likely label issues (%d '
               'flagged; inner accuracy %.1f%%); they are listed in %s.', len(train) - len(keep),
               len(train), record['flagged'], 100 * record['inner_accuracy'],
               os.path.join(workdir, 'label_screen.csv'))
  return dataclasses.replace(dataset, train=train.subset(keep))


def cache_key(config, train) -> str:
  """A digest of what decides the screen: its settings, how photos are read, the photos (their
  paths and decoded pixels, so a photo edited in place is screened again), labels."""
  d = config.data
  spec = dict(screen=config.label_screen.to_dict(), seed=config.seed, fold=d.fold,
              read=[d.interpolation, d.aspect, d.alpha_background], root=os.path.abspath(train.root),
              photos=hashlib.sha256('\n'.join(f'{p}\t{y}' for p, y in zip(train.paths, train.labels))
                                    .encode()).hexdigest(),
              pixels=folder.pixels_digest(train.images))
  return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _read_record(path: str, key: str) -> dict | None:
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, ValueError):
    return None
  return record if record.get('key') == key else None


def _screen(config, train, class_names: list[str]) -> tuple[dict, list[dict]]:
  s, start = config.label_screen, time.perf_counter()
  features = photo_features(config, train)
  labels = np.asarray(train.labels, np.int64)
  probabilities = cross_fitted_probabilities(features, labels, len(class_names), s.folds,
                                             config.seed + max(config.data.fold, 0), s.l2, s.steps)
  issues = label_issues.find(labels, probabilities, s.method)
  chosen = choose_dropped(issues, labels, s.drop_fraction)
  counts = {class_names[c]: int(sum(labels[r['index']] == c for r in chosen))
            for c in range(len(class_names))}
  record = dict(inner_accuracy=float((probabilities.argmax(1) == labels).mean()),
                flagged=len(issues), dropped=[train.paths[r['index']] for r in chosen],
                dropped_per_class=counts, num_train=len(train), seconds=time.perf_counter() - start)
  return record, chosen


def choose_dropped(issues: list[dict], labels: np.ndarray, drop_fraction: float) -> list[dict]:
  """The first issues in rank order, at most drop_fraction of the photos and half of any class."""
  budget = int(drop_fraction * len(labels))
  room = {int(c): int(n) // 2 for c, n in zip(*np.unique(labels, return_counts=True))}
  chosen = []
  for r in issues:
    if len(chosen) == budget:
      break
    if room[r['given']] > 0:
      room[r['given']] -= 1
      chosen.append(r)
  return chosen


def photo_features(config, train) -> np.ndarray:
  """[N, F] pooled ImageNet features of the training photos, read from their files."""
  s, d = config.label_screen, config.data
  if not os.path.isdir(train.root):
    raise ConfigError('config.label_screen: screening reads the photos from their files, and '
                      f'this training set has none ({train.root!r} is not a folder); set '
                      'label_screen.drop_fraction=0')
  model, variables = pretrained.imagenet_network(s.network, datasets.cache_dir(d))
  forward = jax.jit(lambda v, x: model.apply(v, x, train=False, features=True))

  def read(path):
    try:
      return imageio.load_image(os.path.join(train.root, path), s.image_size, d.interpolation,
                                d.aspect, d.alpha_background)
    except (imageio.BadImage, OSError) as e:
      raise DataError(f'label_screen: cannot read {path!r} again ({e})') from e
  out, batch = [], s.batch_size
  with concurrent.futures.ThreadPoolExecutor(d.read_workers or os.cpu_count()) as pool:
    for start in range(0, len(train), batch):
      images = np.stack(list(pool.map(read, train.paths[start:start + batch])))
      images, n = next(batching.padded_chunks(images, batch))  # one shape for every call
      f = np.asarray(forward(variables, np.concatenate([images, images[:, :, ::-1]])))
      out.append((f[:n] + f[batch:batch + n]) / 2)  # each photo's with its mirror image's
  return np.concatenate(out)


def inner_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
  """Each photo's part, stratified: each class's photos dealt out in a seeded random order."""
  rng, part = np.random.RandomState(seed), np.zeros(len(labels), np.int64)
  for c in np.unique(labels):
    idx = np.flatnonzero(labels == c)
    rng.shuffle(idx)
    part[idx] = np.arange(len(idx)) % k
  return part


def cross_fitted_probabilities(features, labels, num_classes: int, k: int, seed: int, l2: float,
                               steps: int) -> np.ndarray:
  """[N, K] class probabilities, each part's from a head fitted on the other parts."""
  part, probabilities = inner_folds(labels, k, seed), np.zeros((len(labels), num_classes))
  for j in range(k):
    fit, held = part != j, part == j
    probabilities[held] = logistic_regression(features[fit], labels[fit], features[held],
                                              num_classes, l2, steps)
  return probabilities


def logistic_regression(x, y, x_test, num_classes: int, l2: float, steps: int) -> np.ndarray:
  """Softmax regression on standardised features (L2 penalty, `steps` L-BFGS iterations); the
  class probabilities of `x_test`."""
  mean, std = x.mean(0), x.std(0) + 1e-6
  x, x_test = jnp.asarray((x - mean) / std), jnp.asarray((x_test - mean) / std)
  y = jnp.asarray(y)

  def loss(params):
    w, b = params
    ce = optax.softmax_cross_entropy_with_integer_labels(x @ w + b, y).mean()
    return ce + l2 * jnp.sum(w ** 2)
  solver = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(loss)

  @jax.jit
  def fit(params):
    def step(_, carry):
      params, state = carry
      value, grad = value_and_grad(params, state=state)
      updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=loss)
      return optax.apply_updates(params, updates), state
    return jax.lax.fori_loop(0, steps, step, (params, solver.init(params)))[0]
  w, b = fit((jnp.zeros((x.shape[1], num_classes)), jnp.zeros(num_classes)))
  return np.asarray(jax.nn.softmax(x_test @ w + b))


def _write(workdir: str, record: dict, train, issues: list[dict], class_names, key: str) -> None:
  os.makedirs(workdir, exist_ok=True)
  label_issues.write_issues(workdir, 'label_screen', train, issues, class_names)
  fileio.write_json(os.path.join(workdir, RECORD), dict(record, key=key))
