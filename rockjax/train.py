"""The training loop: data, model, pmap steps, monitors, checkpoints and the per-epoch record.

`train_and_evaluate(config, workdir)` trains until `num_epochs` or early stopping, keeps the best
checkpoint by validation accuracy, and resumes from the latest checkpoint when the same command is
run again with the same workdir.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from rockjax import (augment, checkpointing, configlib, data, device_augment, fileio, history,
                     input_pipeline, models, monitoring, optim, steps)
from rockjax.configlib import ConfigError

# Keys that may change between a run and its resumption in the same workdir.
RESUMABLE_CHANGES = ('num_epochs', 'log_every_steps', 'early_stopping_patience', 'data.dir',
                     'data.cache_dir', 'data.read_workers', 'eval_batch_size', 'num_devices',
                     'eval', 'predict', 'preview', 'distributed', 'data.split_from')

LIBRARIES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'tensorflow-cpu', 'tensorflow',
             'albumentations', 'albucore', 'opencv-python-headless', 'numpy', 'ml-collections')


class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN or infinite loss; the checkpoints from before it are kept."""


class WorkdirError(OSError):
  """The workdir cannot be used (not writable, too little space, or a different config)."""


@dataclasses.dataclass
class Runtime:
  """The devices this process trains on, and its place among all processes."""
  devices: list
  mesh: jax.sharding.Mesh
  process_index: int
  process_count: int

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  @property
  def is_main(self) -> bool:
    return self.process_index == 0


def make_runtime(config) -> Runtime:
  local = jax.local_devices()
  n = config.num_devices or len(local)
  if n > len(local):
    raise ConfigError(f'config.num_devices: {n} requested but only {len(local)} local '
                      f'{local[0].platform} device(s) exist')
  devices = local[:n]
  rt = Runtime(devices=devices, mesh=steps.make_mesh(devices), process_index=jax.process_index(),
               process_count=jax.process_count())
  for key in ('batch_size', 'eval_batch_size'):
    total = n * rt.process_count
    if config[key] % total:
      raise ConfigError(f'config.{key}: {config[key]} does not divide over {total} device(s) '
                        f'({rt.process_count} process(es) x {n} local); use a multiple of {total}')
  return rt


def prepare_workdir(workdir: str, config) -> None:
  """Creates the workdir, checks it is writable, and refuses to mix configs in one workdir."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f'.write-test-{os.getpid()}')
    with open(probe, 'w') as f:
      f.write('ok')
    os.remove(probe)
  except OSError as e:
    raise WorkdirError(f'workdir {workdir!r} is not writable: {e}') from e
  saved_path = os.path.join(workdir, 'config.json')
  if os.path.exists(saved_path):
    changed = configlib.differences(configlib.load(saved_path), config, ignore=RESUMABLE_CHANGES)
    if changed:
      raise WorkdirError(
          f'workdir {workdir!r} holds a run with a different config (changed: {changed}); '
          'resume it with the same config, or pass a new --workdir')
  configlib.save(config, saved_path)
  write_environment(os.path.join(workdir, 'environment.json'))


def write_environment(path: str) -> None:
  """Library versions, Python, platform and devices of this run (appended to on every resume)."""
  import importlib.metadata
  import json
  import platform
  import sys
  versions = {}
  for name in LIBRARIES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  entry = dict(time=time.strftime('%Y-%m-%dT%H:%M:%S%z'), python=sys.version.split()[0],
               platform=platform.platform(), libraries=versions,
               devices=[str(d) for d in jax.local_devices()], process_count=jax.process_count())
  sessions = []
  if os.path.exists(path):
    try:
      with open(path) as f:
        sessions = json.load(f)
    except (OSError, ValueError):
      sessions = []
  sessions.append(entry)
  fileio.write_json(path, sessions)


def check_free_space(workdir: str, state) -> None:
  """Two checkpoints must fit (with room to spare) before training starts, not after an epoch."""
  state_bytes = sum(np.asarray(x).nbytes for x in jax.tree.leaves(state))
  need = 3 * state_bytes + 50 * 2**20
  free = shutil.disk_usage(workdir).free
  if free < need:
    raise WorkdirError(f'only {free / 2**20:.0f} MiB free under {workdir!r}; checkpoints need '
                       f'about {need / 2**20:.0f} MiB')


def evaluate(p_eval, state, image_set, config, rt: Runtime, with_logits: bool = False) -> dict:
  """Exact loss and accuracy over every example of `image_set` (padded batches are masked)."""
  totals = []
  logits = []
  for batch in input_pipeline.eval_batches(
      image_set.images, image_set.labels, global_batch=config.eval_batch_size,
      num_devices=rt.num_devices, process_index=rt.process_index,
      process_count=rt.process_count):
    index = batch.pop('index')
    metrics, batch_logits = p_eval(state, steps.shard_batch(batch, rt.mesh))
    totals.append(metrics)
    if with_logits:
      flat = np.asarray(batch_logits).reshape(-1, batch_logits.shape[-1])
      logits.append(flat[index.reshape(-1) >= 0])
  totals = jax.device_get(totals)
  count = sum(float(t['count']) for t in totals)
  result = dict(loss=sum(float(t['loss_sum']) for t in totals) / count,
                accuracy=sum(float(t['correct']) for t in totals) / count, count=int(count))
  if with_logits:
    result['logits'] = np.concatenate(logits)
  return result


def _first_non_finite(step_losses: np.ndarray) -> int | None:
  bad = np.flatnonzero(~np.isfinite(step_losses))
  return int(bad[0]) if len(bad) else None


def build_model_and_state(config, num_classes: int, steps_per_epoch: int):
  """The model (with BatchNorm synced over the pmap axis), lr schedule and initial state."""
  model = models.create_model(config.model, num_classes, bn_axis_name=steps.AXIS)
  schedule = optim.learning_rate_schedule(config, steps_per_epoch)
  tx = optim.create_optimizer(config, schedule)
  state = steps.create_train_state(model, tx, jax.random.PRNGKey(config.seed),
                                   config.data.image_size, ema=config.ema_decay > 0)
  return model, schedule, state


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains per `config` into `workdir` (resuming if it holds a checkpoint); returns a summary."""
  configlib.validate(config)
  rt = make_runtime(config)
  if rt.is_main:
    prepare_workdir(workdir, config)
  dataset = data.load_dataset(config, workdir if rt.is_main else None)
  train_set, val_set = dataset.train, dataset.val
  num_classes = len(dataset.class_names)
  spe = input_pipeline.steps_per_epoch(len(train_set), config.batch_size)
  if spe == 0:
    raise ConfigError(f'config.batch_size: {config.batch_size} exceeds the {len(train_set)} '
                      'training images; lower it')
  model, schedule, state = build_model_and_state(config, num_classes, spe)
  num_params = sum(x.size for x in jax.tree.leaves(state.params))
  logging.info('%s: %s parameters (+%s BatchNorm statistics) on %d %s device(s) x %d process(es); '
               'global batch %d, %d steps per epoch.', config.model.name, f'{num_params:,}',
               f'{sum(x.size for x in jax.tree.leaves(state.batch_stats)):,}', rt.num_devices,
               rt.devices[0].platform, rt.process_count, config.batch_size, spe)
  if rt.is_main:
    check_free_space(workdir, state)
  state = steps.replicate(state, rt.mesh)

  plateau = optim.ReduceOnPlateau.from_config(config)
  stopper = optim.EarlyStopping(config.early_stopping_patience)
  loop = dict(epoch=0, step=0, elapsed_seconds=0.0, stop_reason='')
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'))
  log = history.History(os.path.join(workdir, 'metrics.jsonl'))
  latest = ckpt.latest_epoch()
  if latest is not None:
    state, loop = ckpt.restore(latest, state)
    plateau.load_state_dict(loop['plateau'])
    stopper.load_state_dict(loop['early_stopping'])
    logging.info('Resumed from the checkpoint of epoch %d (best val accuracy %.2f%% at epoch %d).',
                 latest, 100 * stopper.best, stopper.best_epoch)
  if rt.is_main:
    log.truncate_after(loop['epoch'])

  def summary() -> dict:
    return dict(workdir=workdir, epochs=loop['epoch'], steps=loop['step'],
                best_val_accuracy=stopper.best, best_epoch=stopper.best_epoch,
                stop_reason=loop['stop_reason'], elapsed_seconds=loop['elapsed_seconds'],
                num_params=int(num_params), class_names=dataset.class_names)

  if loop['stop_reason'] == 'early_stopping' or loop['epoch'] >= config.num_epochs:
    logging.info('This run already finished (%s after epoch %d); nothing to do.',
                 loop['stop_reason'] or 'num_epochs', loop['epoch'])
    ckpt.close()
    return summary()

  on_device = config.augment.where == 'device'
  compose = None if on_device else augment.build_host_pipeline(config.augment,
                                                               config.data.image_size)
  augmenter = augment.HostAugmenter(compose, config.data.image_size) if compose else None
  p_train = steps.pmap_train_step(
      rt.devices, schedule=schedule, seed=config.seed, label_smoothing=config.label_smoothing,
      device_augment=device_augment.spec_from_config(config.augment),
      mixup_alpha=config.augment.mixup_alpha, cutmix_alpha=config.augment.cutmix_alpha,
      num_classes=num_classes, ema_decay=config.ema_decay)
  p_eval = steps.pmap_eval_step(rt.devices, test_time_flip=config.test_time_flip)
  monitor = monitoring.Monitor(workdir, enabled=rt.is_main)
  epoch_times = []
  try:
    for epoch in range(loop['epoch'] + 1, config.num_epochs + 1):
      epoch_start = time.perf_counter()
      step_metrics = []
      compile_seconds = 0.0
      bar = monitoring.ProgressBar(spe, epoch, config.num_epochs)
      for i, batch in enumerate(input_pipeline.train_batches(
          train_set.images, train_set.labels, global_batch=config.batch_size,
          num_devices=rt.num_devices, seed=config.seed, epoch=epoch, augmenter=augmenter,
          deterministic=config.data.deterministic, process_index=rt.process_index,
          process_count=rt.process_count)):
        state, metrics = p_train(state, steps.shard_batch(batch, rt.mesh))
        step_metrics.append(metrics)
        bar.update(i + 1)
        if i == 0 and not epoch_times:
          jax.block_until_ready(metrics)
          compile_seconds = time.perf_counter() - epoch_start
          logging.info('First train step (compilation included) took %.1fs.', compile_seconds)
        if config.log_every_steps and (i + 1) % config.log_every_steps == 0:
          m = jax.device_get(metrics)
          logging.info('  step %d/%d of epoch %d: loss %.4f', i + 1, spe, epoch,
                       float(m['loss_sum']) / float(m['count']))
      step_metrics = jax.device_get(step_metrics)
      bar.close()
      train_seconds = time.perf_counter() - epoch_start
      step_losses = np.asarray([float(m['loss_sum']) / float(m['count']) for m in step_metrics])
      bad = _first_non_finite(step_losses)
      if bad is not None:
        raise NonFiniteLossError(
            f'non-finite training loss ({step_losses[bad]}) at step {loop["step"] + bad + 1} '
            f'(epoch {epoch}, step {bad + 1} of the epoch); stopping. The checkpoints of epoch '
            f'{ckpt.latest_epoch()} (latest) and {ckpt.best_epoch()} (best) are kept. Lower '
            'learning_rate or set grad_clip_norm.')
      val = evaluate(p_eval, state, val_set, config, rt)
      is_best = stopper.update(epoch, val['accuracy'])
      lr_scale = plateau.update(val['loss'])
      state = state.replace(lr_scale=steps.replicate(jnp.float32(lr_scale), rt.mesh))
      epoch_seconds = time.perf_counter() - epoch_start
      epoch_times.append(epoch_seconds)
      loop.update(epoch=epoch, step=loop['step'] + len(step_metrics),
                  elapsed_seconds=loop['elapsed_seconds'] + epoch_seconds,
                  plateau=plateau.state_dict(), early_stopping=stopper.state_dict())
      if stopper.should_stop:
        loop['stop_reason'] = 'early_stopping'
      elif epoch == config.num_epochs:
        loop['stop_reason'] = 'num_epochs'
      n_images = sum(int(m['count']) for m in step_metrics)
      record = dict(
          epoch=epoch, step=loop['step'],
          train_loss=float(step_losses.mean()),
          train_accuracy=sum(float(m['correct']) for m in step_metrics) / max(n_images, 1),
          val_loss=val['loss'], val_accuracy=val['accuracy'],
          best_val_accuracy=stopper.best, best_epoch=stopper.best_epoch, is_best=is_best,
          learning_rate=float(step_metrics[-1]['learning_rate']),
          images_per_s=n_images / max(train_seconds - compile_seconds, 1e-9),
          epoch_seconds=epoch_seconds, elapsed_seconds=loop['elapsed_seconds'],
          eta_seconds=float(np.mean(epoch_times[-5:])) * (config.num_epochs - epoch))
      # Save before recording the epoch: the save of epoch e waits for that of e - 1 to finish, so
      # a crash at any moment finds the checkpoint of at least the epoch before the last recorded.
      if epoch % config.checkpoint_every_epochs == 0 or is_best or loop['stop_reason']:
        ckpt.save(epoch, state, loop, val['accuracy'], val['loss'], is_best)
      if rt.is_main:
        log.append(record)
        monitor.write_epoch(record, log.read())
      logging.info(history.format_epoch(record, config.num_epochs))
      if loop['stop_reason'] == 'early_stopping':
        logging.info('Early stopping: no val-accuracy gain for %d epochs.', stopper.wait)
        break
  finally:
    monitor.close()
    ckpt.close()  # waits for pending saves: what was saved stays saved, even on an error
  logging.info('Done: best val accuracy %.2f%% at epoch %d; best checkpoint in %s.',
               100 * stopper.best, stopper.best_epoch, ckpt.directory)
  return summary()
