"""How batches reach the compiled steps: from the host, or from arrays resident on the devices.

`data.where=host` (HostFeed): tf.data gathers (and, with augment.where=host, augments with
Albumentations) each batch on the host and copies it to the devices; `steps_per_dispatch` batches
go in one compiled call. `data.where=device` (DeviceFeed): the decoded training set is put on every
device once, the validation share of this process once; each epoch the host uploads only the
epoch's example order (4 bytes per image), and gathering, device augmentation, mixup/CutMix and
the whole evaluation run inside compiled code, `steps_per_dispatch` steps per call.

The epoch order is the host path's own seeded permutation (rockjax/data/batching.py), cut the same
way over processes and devices, so both feeds train on exactly the same batches: with
augment.where=device (or no augmentation) they give the same metrics, and a resumed run the same
epochs as an uninterrupted one.

Each feed's `train(state, epoch)` yields (state, metrics) once per dispatch; `evaluate(state)`
returns the exact loss and accuracy over the validation set.
"""

from __future__ import annotations

import types

import jax
import numpy as np

from rockjax.augment import presets
from rockjax.data import batching
from rockjax.errors import ConfigError
from rockjax.training import optim, runtime, steps


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """data.class_balance=weights: each class's loss weight, inversely proportional to its share of
  the training images, scaled so that the average weight over the images is 1."""
  labels = np.asarray(labels)
  counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
  weights = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
  return (weights * len(labels) / float(np.sum(weights[labels]))).astype(np.float32)


def step_options(config, schedule, num_classes: int, train_labels=None) -> dict:
  """The train step's keyword arguments for this config (`train_labels`: for class weights)."""
  on_images = not config.features.enabled  # cached features were augmented when computed
  weights = None
  if config.data.class_balance == 'weights':
    if train_labels is None:
      raise ValueError('data.class_balance=weights needs the training labels')
    weights = tuple(float(w) for w in class_weights(train_labels, num_classes))
  return dict(class_weights=weights, schedule=schedule, seed=config.seed, label_smoothing=config.label_smoothing,
              augment_spec=presets.device_spec(config.augment) if on_images else None,
              mixup_alpha=config.augment.mixup_alpha, cutmix_alpha=config.augment.cutmix_alpha,
              num_classes=num_classes, ema_decay=config.ema_decay,
              frozen=optim.frozen_modules(config))


def make_feed(config, rt: runtime.Runtime, dataset, schedule):
  """The feed of images the config asks for (features.enabled: rockjax/training/features.py)."""
  if dataset.streamed:
    if config.data.where == 'device':
      raise ConfigError('config.data.where: the training set is streamed (data.in_memory), so it '
                        'cannot be resident on the devices; use data.where=host, or '
                        'data.in_memory=true if it fits')
    return StreamFeed(config, rt, dataset, schedule)
  feed = DeviceFeed if config.data.where == 'device' else HostFeed
  return feed(config, rt, dataset, schedule)


def configured_host_augmenter(config):
  """The preset's host augmenter when augment.where=host (tf.data applies it), else None."""
  return (presets.host_augmenter(config.augment, config.data.image_size)
          if config.augment.where == 'host' else None)


def host_pipeline(config):
  """rockjax/data/pipeline.py (which imports TensorFlow) for data.where=host, else None; a
  ConfigError when TensorFlow cannot be imported. Called before a workdir is claimed."""
  if config.data.where != 'host':
    return None
  try:
    from rockjax.data import pipeline
  except ImportError as e:
    raise ConfigError(f'config.data.where: the host input pipeline needs TensorFlow (tf.data), '
                      f'which cannot be imported ({e}); use --config.data.where=device '
                      '(with augment.where=device)') from e
  return pipeline


def evaluate(p_eval, state, image_set, config, rt: runtime.Runtime) -> dict:
  """Exact loss and accuracy over every example of `image_set`, batch by batch from the host
  (padded batches are masked)."""
  return evaluate_batches(p_eval, state, batching.eval_batches(
      image_set.images, image_set.labels, global_batch=config.eval_batch_size,
      num_devices=rt.num_devices, process_index=rt.process_index,
      process_count=rt.process_count), rt)


def evaluate_batches(p_eval, state, batches, rt: runtime.Runtime) -> dict:
  """Summed loss and accuracy over padded, masked eval batches."""
  totals = []
  for batch in batches:
    batch.pop('index')
    metrics, _ = p_eval(state, steps.shard_batch(batch, rt.mesh))
    totals.append(metrics)
  return sum_eval_metrics(jax.device_get(totals))


def sum_eval_metrics(per_batch: list[dict]) -> dict:
  count = sum(float(t['count']) for t in per_batch)
  return dict(loss=sum(float(t['loss_sum']) for t in per_batch) / count,
              accuracy=sum(float(t['correct']) for t in per_batch) / count, count=int(count))


def split_steps(dispatch_metrics: list[dict]) -> list[dict]:
  """Per-step metrics on the host from per-dispatch ones (scalars, or stacked [K])."""
  out = []
  for m in dispatch_metrics:
    if np.ndim(m['count']) == 0:
      out.append(m)
    else:
      out += [{key: value[i] for key, value in m.items()} for i in range(len(m['count']))]
  return out


class HostFeed:
  """data.where=host: batches from the tf.data pipeline, K of them per dispatch."""

  def __init__(self, config, rt: runtime.Runtime, dataset, schedule):
    self._pipeline = host_pipeline(config)
    self.config, self.rt, self.dataset = config, rt, dataset
    self.k = config.steps_per_dispatch
    self.augmenter = configured_host_augmenter(config)
    options = step_options(config, schedule, len(dataset.class_names), dataset.train.labels)
    self.p_train = steps.build_train_step(rt.pmap_devices, steps_per_call=self.k, **options)
    self.p_eval = steps.build_eval_step(rt.pmap_devices, test_time_flip=config.test_time_flip,
                                        test_time_rotate=config.test_time_rotate)

  def _batches(self, epoch: int):
    config, rt = self.config, self.rt
    return self._pipeline.train_batches(
        self.dataset.train.images, self.dataset.train.labels, global_batch=config.batch_size,
        num_devices=rt.num_devices, seed=config.seed, epoch=epoch, augmenter=self.augmenter,
        deterministic=config.data.deterministic, process_index=rt.process_index,
        process_count=rt.process_count, threads=config.data.host_threads,
        repeats=config.data.repeats, balanced=config.data.class_balance == 'sampler')

  def train(self, state, epoch: int):
    rt, batches = self.rt, self._batches(epoch)
    if self.k == 1:
      for batch in batches:
        state, metrics = self.p_train(state, steps.shard_batch(batch, rt.mesh))
        yield state, metrics
      return
    group = []
    for batch in batches:
      group.append(batch)
      if len(group) == self.k:
        state, metrics = self._dispatch(state, group)
        group = []
        yield state, metrics
    if group:
      state, metrics = self._dispatch(state, group)
      yield state, metrics

  def _dispatch(self, state, group: list[dict]):
    stacked = {key: np.stack([b[key] for b in group], axis=1) for key in group[0]}
    return self.p_train(state, steps.shard_batch(stacked, self.rt.mesh))

  def evaluate(self, state) -> dict:
    return evaluate(self.p_eval, state, self.dataset.val, self.config, self.rt)


class StreamFeed(HostFeed):
  """data.in_memory=false (or auto over the budget): batches streamed from a TFDS dataset with
  tf.data (rockjax/data/streaming.py); validation streamed too, padded and masked."""

  def _batches(self, epoch: int):
    from rockjax.data import streaming
    config, rt = self.config, self.rt
    if config.data.class_balance == 'sampler':
      raise ConfigError('config.data.class_balance: sampler draws from a training set in memory; '
                        'this one is streamed (data.in_memory): use class_balance=weights, or '
                        'data.in_memory=true if it fits')
    return streaming.train_batches(
        self.dataset.train, global_batch=config.batch_size, num_devices=rt.num_devices,
        seed=config.seed, epoch=epoch, augmenter=self.augmenter,
        shuffle_buffer=config.data.shuffle_buffer, deterministic=config.data.deterministic,
        process_index=rt.process_index, process_count=rt.process_count,
        threads=config.data.host_threads, repeats=config.data.repeats)

  def evaluate(self, state) -> dict:
    from rockjax.data import streaming
    rt = self.rt
    return evaluate_batches(self.p_eval, state, streaming.eval_batches(
        self.dataset.val, global_batch=self.config.eval_batch_size, num_devices=rt.num_devices,
        process_index=rt.process_index, process_count=rt.process_count), rt)


def resident_training_set(train, num_val: int, kfold: int) -> tuple[np.ndarray, np.ndarray]:
  """The training (images, labels) to put on the devices. Under k-fold they are padded with zero
  rows to len(train) + num_val, the same for every fold, so folds whose training sets differ by a
  few images (stratified, duplicate-grouped folds do) compile the same programs, and JAX's
  compilation cache compiles them once (unless their steps per epoch differ: with a warmup or
  cosine schedule, or several steps per dispatch, the step count is part of the program). The
  epoch's order only indexes real rows."""
  images, labels = train.images, train.labels
  pad = num_val if kfold > 1 else 0
  if pad:
    images = np.concatenate([images, np.zeros((pad,) + images.shape[1:], images.dtype)])
    labels = np.concatenate([labels, np.zeros(pad, labels.dtype)])
  return images, labels


class DeviceFeed:
  """data.where=device: the data sets resident on the devices; K steps per dispatch. `apply_fn`
  replaces the model's in the steps (the head alone, on features: rockjax/training/features.py);
  `eval_apply_fn`, in evaluation, scores validation inputs that hold their test-time views already
  (the head over each view's features), so the eval step adds none."""

  def __init__(self, config, rt: runtime.Runtime, dataset, schedule, apply_fn=None,
               eval_apply_fn=None):
    self.config, self.rt, self.dataset = config, rt, dataset
    train, val = dataset.train, dataset.val
    self.local_batch, self.per_device = batching.local_batch_sizes(
        config.batch_size, rt.num_devices, rt.process_count)
    self.num_steps = batching.steps_per_epoch(len(train) * config.data.repeats, config.batch_size)
    val_arrays, num_val_batches = batching.stacked_eval_arrays(
        val.images, val.labels, global_batch=config.eval_batch_size, num_devices=rt.num_devices,
        process_index=rt.process_index, process_count=rt.process_count)
    train_images, train_labels = resident_training_set(train, len(val), config.data.kfold)
    # The epoch's order is padded like the data: as many steps as the padded rows would make.
    self.order_columns = self.per_device * batching.steps_per_epoch(
        len(train_images) * config.data.repeats, config.batch_size)
    resident_mb = (train_images.nbytes + train_labels.nbytes
                   + sum(v.nbytes for v in val_arrays.values()) / rt.num_devices) / 2**20
    if resident_mb > config.data.device_memory_mb:
      raise ConfigError(
          f'config.data.device_memory_mb: the decoded data set needs {resident_mb:.0f} MiB on '
          f'each device, over the budget of {config.data.device_memory_mb} MiB; raise it if the '
          'devices have room, or use --config.data.where=host')
    self.train_data = steps.replicate({'image': train_images, 'label': train_labels}, rt.mesh)
    self.val_data = steps.shard_batch(val_arrays, rt.mesh)
    self.options = dict(step_options(config, schedule, len(dataset.class_names),
                                     dataset.train.labels),
                        apply_fn=apply_fn)
    self._compiled = {}
    views = ({} if eval_apply_fn else
             dict(test_time_flip=config.test_time_flip, test_time_rotate=config.test_time_rotate))
    self.p_eval = steps.build_eval_step(
        rt.pmap_devices, feed='resident', num_batches=num_val_batches,
        per_device=val_arrays['image'].shape[1] // num_val_batches,
        apply_fn=eval_apply_fn or apply_fn, **views)

  def replace_training_images(self, images: np.ndarray) -> None:
    """New training inputs for the same labels (an augmented pass of cached features)."""
    arrays = types.SimpleNamespace(images=images, labels=self.dataset.train.labels)
    padded, _ = resident_training_set(arrays, len(self.dataset.val), self.config.data.kfold)
    self.train_data = steps.replicate({'image': padded, 'label': self.train_data['label']},
                                      self.rt.mesh)

  def _train_fn(self, num_steps: int):
    """One compiled function per number of steps in a dispatch (K, and the epoch's remainder)."""
    if num_steps not in self._compiled:
      self._compiled[num_steps] = steps.build_train_step(
          self.rt.pmap_devices, feed='resident', steps_per_call=num_steps,
          per_device=self.per_device, **self.options)
    return self._compiled[num_steps]

  def train(self, state, epoch: int):
    config, rt = self.config, self.rt
    n = len(self.dataset.train)
    balanced = self.dataset.train.labels if config.data.class_balance == 'sampler' else None
    order = batching.epoch_order(n, config.seed, epoch, config.batch_size, rt.process_index,
                                 rt.process_count, config.data.repeats, balanced) % n
    rows = batching.device_orders(order, self.num_steps, rt.num_devices, self.per_device)
    rows = np.pad(rows, ((0, 0), (0, self.order_columns - rows.shape[1])))  # never read
    orders = steps.shard_batch(rows, rt.mesh)
    k = config.steps_per_dispatch
    for first in range(0, self.num_steps, k):
      n = min(k, self.num_steps - first)
      state, metrics = self._train_fn(n)(state, self.train_data, orders, np.int32(first))
      yield state, metrics

  def evaluate(self, state) -> dict:
    per_batch = jax.device_get(self.p_eval(state, self.val_data))
    num_batches = len(per_batch['count'])
    return sum_eval_metrics([{k: v[b] for k, v in per_batch.items()} for b in range(num_batches)])
