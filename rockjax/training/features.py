"""The fast mode for CPUs (config.features.enabled): the pretrained backbone stays fixed, each image's
features are computed once, and only the classifier head trains, on those features, in seconds.

The features are the network's pooled features (`model.apply(..., features=True)`, in eval mode) of
the validation images and of `features.passes` versions of the training images: pass 0 is the
images as decoded, passes 1.. are augmented by the configured preset (augment.preset: its device
version, whatever augment.where says; seeded by pass). Epoch e trains on pass (e - 1) % passes.
With test_time_flip (and test_time_rotate), the validation images' features are computed in every
view the network would be scored in (mirrored; turned by quarter turns), and the head's class
probabilities averaged over the views, as steps.class_log_probs averages the network's. Each set is
cached in `<workdir>/features/` under a key of the backbone's weights (a digest of every variable
but the head's), the preprocessing (image size, resampling, aspect, alpha background), the images
(their paths and a digest of their decoded pixels), the augmentation, the pass, the view and the
blocks the head reads besides the top (model.head_blocks), so a resumed run, or a second run with
the same workdir, reads them instead of computing them again; anything that would change a feature
changes the key.

Training then runs the ordinary steps (rockjax/training/steps.py) of the device-resident feed
(rockjax/training/feeding.py) with the features in place of the images and the head in place of
the network (`apply_fn`). Everything but the head is frozen (init_freeze='all' is implied), so the
checkpoints hold the whole network, and eval, predict and export use it unchanged: the head on the
backbone's features is the network's own output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from rockjax import fileio, models
from rockjax.augment import presets
from rockjax.data import batching, folder
from rockjax.errors import ConfigError
from rockjax.training import feeding, runtime, state as states, steps

FOLDER = 'features'


@dataclasses.dataclass
class Arrays:
  """Features (in place of images) and labels: what the device-resident feed reads."""
  images: np.ndarray
  labels: np.ndarray

  def __len__(self) -> int:
    return len(self.labels)


@dataclasses.dataclass
class FeatureSet:
  train: Arrays
  val: Arrays
  class_names: list


def backbone_digest(variables: dict) -> str:
  """SHA-256 of every parameter and statistic except the head's."""
  digest = hashlib.sha256()
  for path, leaf in sorted(jax.tree_util.tree_leaves_with_path(jax.device_get(variables)),
                           key=lambda item: jax.tree_util.keystr(item[0])):
    name = jax.tree_util.keystr(path)
    if f"'{models.HEAD}'" in name:
      continue
    digest.update(name.encode())
    digest.update(np.ascontiguousarray(leaf).tobytes())
  return digest.hexdigest()


def augment_spec(config) -> presets.Spec:
  """The augmentation of passes 1..: the preset's device version (whatever augment.where says)."""
  return presets.spec_from_config(config.augment)


def cache_key(config, backbone: str, paths, split: str, pass_index: int,
              view: tuple[int, bool] = steps.IDENTITY, pixels: str = '') -> str:
  d = config.data
  what = dict(model=config.model.name, backbone=backbone, image_size=d.image_size,
              interpolation=d.interpolation, aspect=d.aspect, alpha_background=d.alpha_background,
              paths=hashlib.sha256('\n'.join(paths).encode()).hexdigest(), pixels=pixels,
              split=split, pass_index=pass_index, seed=config.seed,
              augment=repr(augment_spec(config)) if pass_index else 'none')
  if view != steps.IDENTITY:
    what['view'] = list(view)
  blocks = models.efficientnet.head_blocks(config.model)
  if blocks:  # the features are the top's and these blocks' (keys without them stay as they were)
    what['head_blocks'] = list(blocks)
  return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


class FeatureFeed:
  """The device-resident feed on cached features; built on the first call, from the state's
  (fixed) backbone."""

  def __init__(self, config, rt: runtime.Runtime, dataset, schedule, model, workdir: str):
    if dataset.streamed:
      raise ConfigError('config.features.enabled: the training set is streamed (data.in_memory), '
                        'and its features are computed from the decoded images; use '
                        'data.in_memory=true if it fits')
    self.config, self.rt, self.dataset, self.schedule = config, rt, dataset, schedule
    self.model, self.folder = model, os.path.join(workdir, FOLDER)
    self.passes = config.features.passes
    self._feed, self._train_passes, self._current, self._compiled = None, {}, None, {}
    self._pixels = {}  # split: digest of its decoded images
    self.views = steps.test_time_views(config.test_time_flip, config.test_time_rotate)
    head = model.head()
    self.head_apply = lambda variables, features, train, rngs=None, mutable=(): _head_output(
        head, variables, features, train, rngs, mutable)
    self.views_apply = lambda variables, features, train=False: _views_output(
        head, variables, features)

  def _forward(self, augmented: bool, view: tuple[int, bool]):
    """The jitted backbone (after the pass's augmentation, in a view): one compiled program each."""
    if (augmented, view) not in self._compiled:
      model, spec = self.model, augment_spec(self.config) if augmented else None

      def forward(variables, images, key):
        if spec is not None:
          images = presets.augment_on_device(key, images, spec)
        return model.apply(variables, steps.view_of(images, view), train=False,
                           features=True)
      self._compiled[augmented, view] = jax.jit(forward)
    return self._compiled[augmented, view]

  def _extract(self, variables, images: np.ndarray, pass_index: int,
               view: tuple[int, bool] = steps.IDENTITY) -> np.ndarray:
    """Features of `images` in batches of features.batch_size (the last one padded: one shape)."""
    forward, batch = self._forward(pass_index > 0, view), self.config.features.batch_size
    key = jax.random.fold_in(jax.random.PRNGKey(self.config.seed), pass_index)
    return np.concatenate([
        np.asarray(forward(variables, chunk, jax.random.fold_in(key, i * batch)))[:n]
        for i, (chunk, n) in enumerate(batching.padded_chunks(images, batch))])

  def _features(self, variables, backbone: str, image_set, split: str, pass_index: int,
                view: tuple[int, bool] = steps.IDENTITY):
    if split not in self._pixels:
      self._pixels[split] = folder.pixels_digest(image_set.images)
    key = cache_key(self.config, backbone, image_set.paths, split, pass_index, view,
                    self._pixels[split])
    path = os.path.join(self.folder, f'{split}-pass{pass_index}-{key}.npz')
    if os.path.exists(path):
      try:
        with np.load(path) as data:
          cached = data['features']
        if len(cached) == len(image_set):
          return cached
      except (OSError, ValueError, KeyError) as e:
        logging.warning('Cached features %s are unreadable (%s); computing them again.', path, e)
    start = time.perf_counter()
    feats = self._extract(variables, image_set.images, pass_index, view)
    logging.info('Features of %d %s images (pass %d%s) computed in %.1fs.', len(feats), split,
                 pass_index, '' if view == steps.IDENTITY else f', view {view}',
                 time.perf_counter() - start)
    if self.rt.is_main:
      os.makedirs(self.folder, exist_ok=True)
      fileio.write_npz(path, {'features': feats})
    return feats

  def _ensure(self, state) -> None:
    if self._feed is not None:
      return
    variables = jax.device_get(states.inference_variables(state))
    self._variables, self._backbone = variables, backbone_digest(variables)
    train, val = self.dataset.train, self.dataset.val
    # One view: [N, features]; several: [N, views, features], which views_apply scores.
    val_views = [self._features(variables, self._backbone, val, 'val', 0, view)
                 for view in self.views]
    several = len(val_views) > 1
    val_features = np.stack(val_views, axis=1) if several else val_views[0]
    self._train_passes[0] = self._features(variables, self._backbone, train, 'train', 0)
    features = FeatureSet(Arrays(self._train_passes[0], train.labels),
                          Arrays(val_features, val.labels), self.dataset.class_names)
    self._feed = feeding.DeviceFeed(self.config, self.rt, features, self.schedule,
                                    apply_fn=self.head_apply,
                                    eval_apply_fn=self.views_apply if several else None)
    self._current = 0

  def train(self, state, epoch: int):
    self._ensure(state)
    p = (epoch - 1) % self.passes
    if p not in self._train_passes:
      self._train_passes[p] = self._features(self._variables, self._backbone, self.dataset.train,
                                             'train', p)
    if p != self._current:
      self._feed.replace_training_images(self._train_passes[p])
      self._current = p
    return self._feed.train(state, epoch)

  def evaluate(self, state) -> dict:
    self._ensure(state)
    return self._feed.evaluate(state)


def _views_output(head, variables, features):
  """Log class probabilities of features [N, views, D], averaged over the views in probability
  (steps.class_log_probs's average; normalised, so the eval step's log-softmax keeps them)."""
  n, views, dim = features.shape
  logits = _head_output(head, variables, features.reshape(n * views, dim), False, None, ())
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32), -1).reshape(n, views, -1)
  return jax.nn.logsumexp(log_p, axis=1) - jnp.log(float(views))


def _head_output(head, variables, features, train, rngs, mutable):
  """The head on features, called like the network's apply (the statistics pass through)."""
  logits = head.apply({'params': {models.HEAD: variables['params'][models.HEAD]}}, features,
                      train=train, rngs=rngs)
  return (logits, {'batch_stats': variables['batch_stats']}) if mutable else logits
