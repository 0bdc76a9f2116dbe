"""The training loop: `train_and_evaluate(config, workdir)`.

Trains until `num_epochs` or early stopping, keeps the best checkpoint by validation accuracy, and
resumes from the latest checkpoint when the same command is run again with the same workdir. The
loop reads as "run an epoch, check its loss, validate, update the monitors, save, record"; each
piece is a function below, and `Loop` is the state that a checkpoint carries besides the weights.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from rockjax.data import batching, dataset as datasets, sources, synthetic
from rockjax.errors import ConfigError, NonFiniteLossError
from rockjax.training import (adapt, checkpointing, faults, features, feeding, finetune, history,
                              monitoring, optim, runtime, screening, state as states, steps,
                              workdir as workdirs)


@dataclasses.dataclass
class Loop:
  """Where training stands: saved with every checkpoint (as JSON) so a resumed run continues."""
  plateau: optim.ReduceOnPlateau
  stopper: optim.EarlyStopping
  epoch: int = 0  # the last finished epoch
  step: int = 0
  elapsed_seconds: float = 0.0
  stop_reason: str = ''  # '' while training; 'num_epochs' or 'early_stopping' when finished
  # The last finished epoch's val accuracy: the figure no choice was made on (the best epoch's is
  # the maximum over epochs on the same images, so it is optimistic). None: not known (a resumed
  # run whose checkpoint predates this field; summary() then reads metrics.jsonl).
  final_val_accuracy: float | None = None

  def to_json(self) -> dict:
    return dict(epoch=self.epoch, step=self.step, elapsed_seconds=self.elapsed_seconds,
                stop_reason=self.stop_reason, plateau=self.plateau.state_dict(),
                early_stopping=self.stopper.state_dict(),
                final_val_accuracy=self.final_val_accuracy)

  def load_json(self, saved: dict) -> None:
    self.epoch, self.step = int(saved['epoch']), int(saved['step'])
    self.elapsed_seconds, self.stop_reason = float(saved['elapsed_seconds']), saved['stop_reason']
    self.final_val_accuracy = saved.get('final_val_accuracy')
    self.plateau.load_state_dict(saved['plateau'])
    self.stopper.load_state_dict(saved['early_stopping'])

  def finished(self, num_epochs: int) -> bool:
    return self.stop_reason == 'early_stopping' or self.epoch >= num_epochs


@dataclasses.dataclass
class Context:
  """What stays fixed while a run trains."""
  config: object
  workdir: str
  rt: runtime.Runtime
  dataset: datasets.Dataset
  steps_per_epoch: int
  num_params: int
  model: object
  ckpt: checkpointing.Checkpointer
  log: history.History


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains per `config` into `workdir` (resuming if it holds a checkpoint); returns a summary.
  `config` is validated where it entered (rockjax.schema.validate: the command line, the API)."""
  feeding.host_pipeline(config)  # TensorFlow, if this path needs it, before the workdir is claimed
  finetune.check_weights(config, datasets.cache_dir(config.data))  # so are pretrained weights
  rt = runtime.make_runtime(config)
  with workdirs.claim(workdir, config, rt.is_main):  # one writer per workdir
    return _train(config, workdir, rt)


def _train(config, workdir: str, rt: runtime.Runtime) -> dict:
  dataset = screening.screen(config, load_data(config, workdir, rt), workdir, rt.is_main)
  config = adapt.fit_to_data(config, len(dataset.train) * config.data.repeats, rt.num_devices)
  ctx, state, schedule = initialise(config, workdir, rt, dataset)
  state, loop = restore_or_start(ctx, state)
  if loop.finished(config.num_epochs):
    logging.info('This run already finished (%s after epoch %d); nothing to do.',
                 loop.stop_reason or 'num_epochs', loop.epoch)
    ctx.ckpt.close()
    return summary(ctx, loop)
  feed = (features.FeatureFeed(config, rt, dataset, schedule, ctx.model, workdir)
          if config.features.enabled else feeding.make_feed(config, rt, dataset, schedule))
  monitor = monitoring.Monitor(workdir, enabled=rt.is_main, config=config,
                               curves=config.curves,
                               curves_every_seconds=config.curves_every_seconds)
  epoch_seconds = []
  with faults.one_line(workdir, loop):  # Ctrl-C, SIGTERM, a full disk: one line
    try:
      for epoch in range(loop.epoch + 1, config.num_epochs + 1):
        start = time.perf_counter()
        state, step_metrics, first_dispatch = run_epoch(ctx, feed, state, epoch,
                                                        first=not epoch_seconds)
        train_seconds = time.perf_counter() - start
        check_finite(ctx, loop, step_metrics, epoch)
        val = feed.evaluate(state)
        is_best, state = update_monitors(ctx, loop, state, epoch, val)
        epoch_seconds.append(time.perf_counter() - start)
        loop.epoch, loop.step = epoch, loop.step + len(step_metrics)
        loop.final_val_accuracy = val['accuracy']
        loop.elapsed_seconds += epoch_seconds[-1]
        loop.stop_reason = ('early_stopping' if loop.stopper.should_stop else
                            'num_epochs' if epoch == config.num_epochs else '')
        record = epoch_record(ctx, loop, step_metrics, val, is_best, epoch_seconds, train_seconds,
                              first_dispatch)
        # Save before recording the epoch: the save of epoch e waits for that of e - 1 to finish, so
        # a crash at any moment finds the checkpoint of at least the epoch before the last recorded.
        if epoch % config.checkpoint_every_epochs == 0 or is_best or loop.stop_reason:
          ctx.ckpt.save(epoch, state, loop.to_json(), val['accuracy'], val['loss'], is_best)
        if rt.is_main:
          ctx.log.append(record)
          monitor.write_epoch(record, ctx.log.read())
        logging.info(history.format_epoch(record, config.num_epochs))
        if loop.stop_reason == 'early_stopping':
          logging.info('Early stopping: no val-accuracy gain for %d epochs.', loop.stopper.wait)
          break
    finally:
      monitor.close()
      ctx.ckpt.close()  # waits for pending saves: what was saved stays saved, even on an error
  result = summary(ctx, loop)
  if result['best_epoch'] == result['final_epoch']:
    logging.info('Done: val accuracy %.2f%% at epoch %d, the final and the best epoch; checkpoint '
                 'in %s.', 100 * result['final_val_accuracy'], result['final_epoch'],
                 ctx.ckpt.directory)
  else:
    logging.info('Done: final-epoch val accuracy %.2f%% (epoch %d), the figure to report; best '
                 '%.2f%% at epoch %d, the checkpoint kept (picked on these same validation '
                 'images, so its figure is biased upwards); best checkpoint in %s.',
                 100 * result['final_val_accuracy'], result['final_epoch'],
                 100 * result['best_val_accuracy'], result['best_epoch'], ctx.ckpt.directory)
  if sources.is_generated(config.data):
    logging.info(synthetic.WHAT_THE_NUMBER_MEANS)
  return result


def load_data(config, workdir: str, rt: runtime.Runtime) -> datasets.Dataset:
  """The run's data, split the same way on every process: process 0 reads the folder and writes
  (or reuses) `split.json`; the others wait for it, then read that saved split."""
  if rt.is_main:
    dataset = datasets.load_dataset(config, workdir)
  rt.barrier('rockjax: split.json written')
  if not rt.is_main:
    dataset = datasets.load_dataset(config, workdir, write=False)
  return dataset


def initialise(config, workdir: str, rt: runtime.Runtime, dataset: datasets.Dataset):
  """(Context, the initial state replicated on the devices, the learning-rate schedule)."""
  spe = batching.steps_per_epoch(len(dataset.train) * config.data.repeats, config.batch_size)
  if spe == 0:
    raise ConfigError(f'config.batch_size: {config.batch_size} exceeds the '
                      f'{len(dataset.train)} training images; lower it (or set '
                      'adapt_to_data=True to shrink it to fit)')
  schedule = optim.learning_rate_schedule(config, spe)
  model, state = states.initial_train_state(config, len(dataset.class_names), schedule, steps.AXIS)
  num_params = sum(x.size for x in jax.tree.leaves(state.params))
  logging.info('%s: %s parameters (+%s BatchNorm statistics) on %d %s device(s) x %d process(es); '
               'global batch %d, %d steps per epoch.', config.model.name, f'{num_params:,}',
               f'{sum(x.size for x in jax.tree.leaves(state.batch_stats)):,}', rt.num_devices,
               rt.devices[0].platform, rt.process_count, config.batch_size, spe)
  if rt.is_main:
    workdirs.check_free_space(workdir, state)
  ctx = Context(config=config, workdir=workdir, rt=rt, dataset=dataset, steps_per_epoch=spe,
                num_params=int(num_params), model=model,
                ckpt=checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints')),
                log=history.History(os.path.join(workdir, 'metrics.jsonl')))
  if optim.starts_pretrained(config) and ctx.ckpt.latest_epoch() is None:  # else: its own
    state, record = (finetune.initialise_from(config, state, dataset.class_names)
                     if config.init_from else finetune.initialise_pretrained(
                         config, state, datasets.cache_dir(config.data)))
    if rt.is_main:
      finetune.write_record(workdir, record)
  return ctx, steps.replicate(state, rt.mesh), schedule


def restore_or_start(ctx: Context, state):
  """The latest checkpoint's state and loop, or the initial ones; drops the metrics.jsonl lines of
  epochs after the checkpoint (they are about to run again)."""
  loop = Loop(plateau=optim.ReduceOnPlateau.from_config(ctx.config),
              stopper=optim.EarlyStopping(ctx.config.early_stopping_patience))
  restored = ctx.ckpt.restore_latest(state)
  if restored is not None:
    latest, state, saved = restored
    state = steps.replicate(state, ctx.rt.mesh)  # a no-op unless it was read as numpy
    loop.load_json(saved)
    logging.info('Resumed from the checkpoint of epoch %d (best val accuracy %.2f%% at epoch %d).',
                 latest, 100 * loop.stopper.best, loop.stopper.best_epoch)
  if ctx.rt.is_main:
    ctx.log.truncate_after(loop.epoch)
  return state, loop


def run_epoch(ctx: Context, feed, state, epoch: int, first: bool):
  """One pass over the training set: (state, per-step metrics on the host, first dispatch).

  `first` (the run's first epoch in this process): the first dispatch, which includes compilation,
  is timed alone and returned as (its steps, its seconds); otherwise None.
  """
  config = ctx.config
  start = time.perf_counter()
  first_dispatch = None
  dispatches, done = [], 0
  bar = monitoring.ProgressBar(ctx.steps_per_epoch, epoch, config.num_epochs)
  for state, metrics in feed.train(state, epoch):
    faults.raise_pending_signal()  # a Ctrl-C or SIGTERM that a callback swallowed
    dispatches.append(metrics)
    before, done = done, done + int(np.size(metrics['count']))
    bar.update(done)
    if first and len(dispatches) == 1:
      jax.block_until_ready(metrics)
      first_dispatch = (done, time.perf_counter() - start)
      logging.info('First train dispatch (compilation included) took %.1fs.', first_dispatch[1])
    every = config.log_every_steps
    if every and done // every > before // every:
      m = feeding.split_steps([jax.device_get(metrics)])[-1]
      logging.info('  step %d/%d of epoch %d: loss %.4f', done, ctx.steps_per_epoch, epoch,
                   float(m['loss_sum']) / float(m['count']))
  step_metrics = feeding.split_steps(jax.device_get(dispatches))
  bar.close()
  return state, step_metrics, first_dispatch


def step_losses(step_metrics: list[dict]) -> np.ndarray:
  return np.asarray([float(m['loss_sum']) / float(m['count']) for m in step_metrics])


def check_finite(ctx: Context, loop: Loop, step_metrics: list[dict], epoch: int) -> None:
  """Stops the run at the first NaN or infinite training loss, naming the step."""
  losses = step_losses(step_metrics)
  bad = np.flatnonzero(~np.isfinite(losses))
  if len(bad):
    first = int(bad[0])
    raise NonFiniteLossError(
        f'non-finite training loss ({losses[first]}) at step {loop.step + first + 1} '
        f'(epoch {epoch}, step {first + 1} of the epoch); stopping. The checkpoints of epoch '
        f'{ctx.ckpt.latest_epoch()} (latest) and {ctx.ckpt.best_epoch()} (best) are kept. Lower '
        'learning_rate or set grad_clip_norm.')


def update_monitors(ctx: Context, loop: Loop, state, epoch: int, val: dict):
  """Early stopping sees val accuracy, reduce-on-plateau val loss: (is a new best, state)."""
  is_best = loop.stopper.update(epoch, val['accuracy'])
  lr_scale = loop.plateau.update(val['loss'])
  return is_best, state.replace(lr_scale=steps.replicate(jnp.float32(lr_scale), ctx.rt.mesh))


def epoch_record(ctx: Context, loop: Loop, step_metrics: list[dict], val: dict, is_best: bool,
                 epoch_seconds: list[float], train_seconds: float, first_dispatch=None) -> dict:
  """The epoch's line of metrics.jsonl (also logged and written to TensorBoard); the ETA leaves
  out the epoch that compiled once later epochs are timed."""
  n_images = sum(int(m['count']) for m in step_metrics)
  recent = epoch_seconds[1:][-5:] or epoch_seconds
  return dict(
      epoch=loop.epoch, step=loop.step,
      train_loss=float(step_losses(step_metrics).mean()),
      train_accuracy=sum(float(m['correct']) for m in step_metrics) / max(n_images, 1),
      val_loss=val['loss'], val_accuracy=val['accuracy'],
      best_val_accuracy=loop.stopper.best, best_epoch=loop.stopper.best_epoch, is_best=is_best,
      learning_rate=float(step_metrics[-1]['learning_rate']),
      images_per_s=history.train_rate(step_metrics, train_seconds, first_dispatch),
      epoch_seconds=epoch_seconds[-1], elapsed_seconds=loop.elapsed_seconds,
      eta_seconds=float(np.mean(recent)) * (ctx.config.num_epochs - loop.epoch))


def final_val_accuracy(ctx: Context, loop: Loop) -> float:
  """The last finished epoch's val accuracy (from the loop state, else from metrics.jsonl)."""
  if loop.final_val_accuracy is not None:
    return float(loop.final_val_accuracy)
  records = [r for r in ctx.log.read() if r['epoch'] == loop.epoch]
  return float(records[-1]['val_accuracy']) if records else float('nan')


def summary(ctx: Context, loop: Loop) -> dict:
  """What summary.json holds: the final epoch's val accuracy (no choice was made on it) beside the
  best epoch's (the maximum over epochs, on the images that chose it), and why training stopped."""
  final = final_val_accuracy(ctx, loop)
  test = ctx.dataset.test
  return dict(workdir=ctx.workdir, epochs=loop.epoch, steps=loop.step,
              final_val_accuracy=final, final_epoch=loop.epoch,
              best_val_accuracy=loop.stopper.best, best_epoch=loop.stopper.best_epoch,
              best_minus_final=loop.stopper.best - final,
              stop_reason=loop.stop_reason, elapsed_seconds=loop.elapsed_seconds,
              num_params=ctx.num_params, class_names=ctx.dataset.class_names,
              num_train=len(ctx.dataset.train), num_val=len(ctx.dataset.val),
              num_test=len(test) if test is not None else 0)
