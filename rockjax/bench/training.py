"""The training side of the benchmarks: the step alone, an epoch end to end, the input pipelines
alone, and a predictor, each built from a config exactly as the trainer builds them."""

from __future__ import annotations

import time

import jax
import numpy as np

from rockjax import models
from rockjax.augment import presets
from rockjax.data import batching, dataset as datasets, folder
from rockjax.serving import predictor as predictors
from rockjax.training import feeding, optim, runtime, state as states, steps

load_dataset = datasets.load_dataset  # (config, workdir=None): the data the config names
data_root = datasets.data_root  # the folder or file the data section reads (generates the set)
steps_per_epoch = batching.steps_per_epoch  # (examples, global batch)
frozen_modules = optim.frozen_modules  # config -> the top-level modules init_freeze fixes
host_augmenter = presets.host_augmenter  # (augment section, size) -> (image, seed) -> image, or None
make_runtime = runtime.make_runtime  # config -> the devices and mesh it trains on (share one)


def _num_params(state) -> int:
  return int(sum(x.size for x in jax.tree.leaves((state.params, state.batch_stats))))


def _flops(compiled) -> float | None:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  return float(analysis['flops']) if analysis and 'flops' in analysis else None


class TrainStep:
  """The trainer's train step on the first local device, on random uint8 batches already there:
  the step's own speed, with nothing feeding it. `augment`: a device augmentation preset run
  inside the step (None: none); `steps_per_call` (K) steps per compiled call. `run(n)` takes n
  calls (num_calls by default) and waits for them; `compile_seconds` is the first call's time
  (compilation included), `flops` XLA's count for one call (with count_flops, which compiles it
  once more), `num_params` parameters and BatchNorm statistics."""

  def __init__(self, config, num_classes: int, augment: str | None = None,
               steps_per_call: int = 1, num_calls: int = 5, seed: int = 0,
               count_flops: bool = False):
    size, batch = config.data.image_size, config.batch_size
    devices = jax.local_devices()[:1]
    self.mesh = steps.make_mesh(devices)
    schedule = optim.learning_rate_schedule(config, 100)
    _, state = states.initial_train_state(config, num_classes, schedule, steps.AXIS, seed)
    self.num_params = _num_params(state)
    self.state = steps.replicate(state, self.mesh)
    options = feeding.step_options(config, schedule, num_classes)
    options['augment_spec'] = presets.spec_with_defaults(augment) if augment else None
    self.step = steps.build_train_step(devices, steps_per_call=steps_per_call, **options)
    rng = np.random.default_rng(seed)
    lead = (1,) if steps_per_call == 1 else (1, steps_per_call)
    self.batches = [steps.shard_batch(dict(
        image=rng.integers(0, 256, lead + (batch, size, size, 3), dtype=np.uint8),
        label=rng.integers(0, num_classes, lead + (batch,)).astype(np.int32)), self.mesh)
        for _ in range(2)]
    self.num_calls = num_calls
    self.images = batch * steps_per_call * num_calls  # per run()
    start = time.perf_counter()
    self.flops = (_flops(self.step.lower(self.state, self.batches[0]).compile())
                  if count_flops else None)
    self.run(1)
    self.compile_seconds = time.perf_counter() - start

  def run(self, n: int | None = None) -> None:
    metrics = None
    for i in range(self.num_calls if n is None else n):
      self.state, metrics = self.step(self.state, self.batches[i % 2])
    jax.block_until_ready(metrics)


def in_memory_dataset(images: np.ndarray, labels: np.ndarray, num_val: int,
                      class_names: list[str]) -> datasets.Dataset:
  """A Dataset of arrays already in memory (the last `num_val` images validate), for feeding
  without reading a folder."""
  whole = folder.ImageSet(images=np.asarray(images, np.uint8),
                          labels=np.asarray(labels, np.int32),
                          paths=[str(i) for i in range(len(images))],
                          class_names=list(class_names), root='', report={})
  n = len(images) - num_val
  return datasets.Dataset(train=whole.subset(range(n)), val=whole.subset(range(n, len(images))),
                          class_names=list(class_names), report={})


class EpochRunner:
  """Epochs of the config's own feed (host or device path, K steps per dispatch, augmentation as
  configured) from a fresh state. Constructing it trains epoch 1 (`first_epoch_seconds`:
  compilation included); each `run()` trains the next epoch and waits for it."""

  def __init__(self, config, dataset, rt: runtime.Runtime | None = None, seed: int = 0):
    self.rt = rt or runtime.make_runtime(config)
    self.steps_per_epoch = batching.steps_per_epoch(len(dataset.train) * config.data.repeats,
                                                    config.batch_size)
    self.images = self.steps_per_epoch * config.batch_size  # per run()
    schedule = optim.learning_rate_schedule(config, self.steps_per_epoch)
    _, initial = states.initial_train_state(config, len(dataset.class_names), schedule,
                                            steps.AXIS, seed)
    self.num_params = _num_params(initial)
    self.state = steps.replicate(initial, self.rt.mesh)
    self.feed = feeding.make_feed(config, self.rt, dataset, schedule)
    self.epoch = 0
    start = time.perf_counter()
    self.run()
    self.first_epoch_seconds = time.perf_counter() - start

  def run(self) -> None:
    self.epoch += 1
    metrics = None
    for self.state, metrics in self.feed.train(self.state, self.epoch):
      pass
    jax.block_until_ready(metrics)


def host_batches(config, image_set, epoch: int = 1, threads: int | None = None):
  """The host input pipeline alone (tf.data, with the config's augmentation when
  augment.where=host), one epoch of batches of `image_set` (in memory)."""
  from rockjax.data import pipeline
  return pipeline.train_batches(image_set.images, image_set.labels,
                                global_batch=config.batch_size, num_devices=1, seed=config.seed,
                                epoch=epoch, augmenter=feeding.configured_host_augmenter(config),
                                threads=config.data.host_threads if threads is None else threads)


def streamed_batches(config, streamed_set, epoch: int = 1, augment: bool = True):
  """The streaming input pipeline alone (data.in_memory=false): one epoch of batches."""
  from rockjax.data import streaming
  augmenter = feeding.configured_host_augmenter(config) if augment else None
  return streaming.train_batches(streamed_set, global_batch=config.batch_size, num_devices=1,
                                 seed=config.seed, epoch=epoch, augmenter=augmenter,
                                 shuffle_buffer=config.data.shuffle_buffer,
                                 threads=config.data.host_threads)


def fresh_predictor(config, class_names: list[str], seed: int = 0) -> predictors.Predictor:
  """The predictor --mode=predict uses, with freshly initialised weights (its speed does not
  depend on them)."""
  size = config.data.image_size
  model = models.create_model(config.model, len(class_names))
  variables = jax.jit(lambda: model.init(jax.random.PRNGKey(seed),
                                         np.zeros((1, size, size, 3), np.uint8), train=False))()
  return predictors.Predictor(config=config, class_names=list(class_names), model=model,
                              variables=variables, epoch=0)
