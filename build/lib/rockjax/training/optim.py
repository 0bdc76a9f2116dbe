"""Optimizer, learning-rate schedule, and the epoch-level monitors that act on validation metrics.

The scheduled learning rate (constant or warmup + cosine, per step) is multiplied inside the train
step by `TrainState.lr_scale`, which `ReduceOnPlateau` lowers between epochs when the validation loss
stalls (Keras ReduceLROnPlateau semantics). `EarlyStopping` ends training when validation accuracy
has not improved for `patience` epochs. Both monitors are plain host-side state that is saved in
every checkpoint, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import optax

from rockjax import models

SCHEDULES = ('constant', 'warmup_cosine', 'plateau')  # config.schedule


def learning_rate_schedule(config, steps_per_epoch: int) -> optax.Schedule:
  lr = config.learning_rate
  if config.schedule in ('constant', 'plateau'):
    return optax.constant_schedule(lr)
  if config.schedule == 'warmup_cosine':
    total = max(1, config.num_epochs * steps_per_epoch)
    warmup = int(config.warmup_epochs * steps_per_epoch)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup else lr, peak_value=lr, warmup_steps=warmup,
        decay_steps=max(total, warmup + 1), end_value=lr * config.cosine_final_fraction)
  raise ValueError(f'config.schedule: unknown schedule {config.schedule!r}')


def _decay_mask(params):
  """Weight decay applies to conv and dense kernels only, not to biases or BatchNorm scales."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def create_optimizer(config, schedule: optax.Schedule) -> optax.GradientTransformation:
  """Adam (AdamW when weight_decay > 0), optionally after global-norm gradient clipping. A run
  fine-tuned from another (init_from) or from pretrained weights (model.pretrained) may freeze
  top-level modules (init_freeze: their updates are zero) and scale the updates of the other
  pretrained ones (init_lr_multiplier); the classifier head always trains at the full rate."""
  kw = dict(b1=config.adam_b1, b2=config.adam_b2, eps=config.adam_eps)
  if config.weight_decay > 0:
    opt = optax.adamw(schedule, weight_decay=config.weight_decay, mask=_decay_mask, **kw)
  else:
    opt = optax.adam(schedule, **kw)
  if starts_pretrained(config) and (frozen_modules(config) or config.init_lr_multiplier != 1.0):
    opt = optax.multi_transform(
        {'head': opt, 'pretrained': optax.chain(opt, optax.scale(config.init_lr_multiplier)),
         'frozen': optax.set_to_zero()},
        functools.partial(param_groups, frozen=frozen_modules(config)))
  if config.grad_clip_norm > 0:
    opt = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), opt)
  return opt


HEAD = models.HEAD  # the classifier layer of every network (rockjax/models/layers.py)


FREEZE_ALL = models.layers.FREEZE_ALL  # init_freeze: every module but the head
is_frozen = models.layers.is_frozen


def starts_pretrained(config) -> bool:
  """Whether the run starts from trained weights: another run's (init_from) or shipped ones."""
  return bool(config.init_from or config.model.pretrained)


def frozen_modules(config) -> tuple[str, ...]:
  """The top-level modules that config.init_freeze names (comma-separated names or first:last
  ranges; 'all': every one but the head; implied by features.enabled) when the run starts from
  trained weights; () otherwise."""
  if not starts_pretrained(config):
    return ()
  if config.features.enabled:  # the head alone trains (rockjax/training/features.py)
    return (FREEZE_ALL,)
  return models.section.expand_frozen(config.model, config.init_freeze)


def param_groups(params, frozen: tuple[str, ...]):
  """'head', 'frozen' or 'pretrained' for every parameter, by its top-level module."""
  def group(name):
    return 'head' if name == HEAD else 'frozen' if is_frozen(name, frozen) else 'pretrained'
  return {name: jax.tree.map(lambda _, g=group(name): g, sub) for name, sub in params.items()}


@dataclasses.dataclass
class ReduceOnPlateau:
  """Multiplies the learning rate by `factor` after `patience` epochs without a val-loss gain.

  Mirrors Keras ReduceLROnPlateau(monitor='val_loss'): an improvement is a loss below
  best - min_delta; the rate never drops below `min_lr`.
  """
  base_lr: float
  factor: float = 0.5
  patience: int = 3
  min_lr: float = 1e-5
  min_delta: float = 1e-4
  enabled: bool = True
  best: float = float('inf')
  wait: int = 0
  scale: float = 1.0

  @classmethod
  def from_config(cls, config) -> 'ReduceOnPlateau':
    p = config.plateau
    return cls(base_lr=config.learning_rate, factor=p.factor, patience=p.patience,
               min_lr=p.min_lr, min_delta=p.min_delta, enabled=config.schedule == 'plateau')

  def update(self, val_loss: float) -> float:
    """Feeds one epoch's validation loss; returns the (possibly lowered) learning-rate scale."""
    if not self.enabled:
      return self.scale
    if val_loss < self.best - self.min_delta:
      self.best, self.wait = val_loss, 0
      return self.scale
    self.wait += 1
    lr = self.base_lr * self.scale
    if self.wait >= self.patience and lr > self.min_lr:
      self.scale = max(lr * self.factor, self.min_lr) / self.base_lr
      self.wait = 0
    return self.scale

  def state_dict(self) -> dict:
    return dict(best=self.best, wait=self.wait, scale=self.scale)

  def load_state_dict(self, state: dict) -> None:
    self.best, self.wait, self.scale = float(state['best']), int(state['wait']), float(state['scale'])


@dataclasses.dataclass
class EarlyStopping:
  """Stops after `patience` epochs without a strictly higher validation accuracy (0 disables)."""
  patience: int
  best: float = float('-inf')
  best_epoch: int = 0
  wait: int = 0

  def update(self, epoch: int, val_accuracy: float) -> bool:
    """Feeds one epoch's accuracy; returns True if it is a new best."""
    if val_accuracy > self.best:
      self.best, self.best_epoch, self.wait = val_accuracy, epoch, 0
      return True
    self.wait += 1
    return False

  @property
  def should_stop(self) -> bool:
    return self.patience > 0 and self.wait >= self.patience

  def state_dict(self) -> dict:
    return dict(best=self.best, best_epoch=self.best_epoch, wait=self.wait)

  def load_state_dict(self, state: dict) -> None:
    self.best, self.best_epoch, self.wait = (float(state['best']), int(state['best_epoch']),
                                             int(state['wait']))
