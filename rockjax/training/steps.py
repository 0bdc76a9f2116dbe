"""The pure train and eval steps, compiled with `jax.pmap` over local devices.

The state is passed *replicated* (`in_axes=None`) and returned once (`out_axes=None`), as in today's
flax/examples/imagenet. Inside the step, gradients and BatchNorm statistics are averaged over the
'batch' axis with `lax.pmean` (BatchNorm also normalises with global-batch statistics when
`model.sync_batchnorm` is set), so N devices compute what one device would for the same global batch.
Metrics are returned as sums over all devices, so accuracy over padded eval batches is exact.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from rockjax.augment import mixing, presets
from rockjax.training import optim
from rockjax.training.state import TrainState, ema_decay_at, ema_update, inference_variables

AXIS = 'batch'


IDENTITY = (0, False)  # a test-time view: (quarter turns, mirrored)


def test_time_views(test_time_flip: bool, test_time_rotate: bool) -> list[tuple[int, bool]]:
  """The views class_log_probs averages over, as (quarter turns, mirrored): the image alone, with
  its mirror image (test_time_flip), in each of four quarter turns (test_time_rotate)."""
  turns = range(4) if test_time_rotate else range(1)
  mirrors = (False, True) if test_time_flip else (False,)
  return [(k, m) for k in turns for m in mirrors]


def view_of(images, view: tuple[int, bool]):
  """The images [N, H, W, C] turned by view[0] quarter turns, then mirrored when view[1]."""
  turns, mirrored = view
  if turns:
    if images.shape[1] != images.shape[2]:
      raise ValueError(f'test_time_rotate needs square images, got {images.shape[1:3]}')
    images = jnp.rot90(images, turns, axes=(1, 2))
  return images[:, :, ::-1] if mirrored else images


def class_log_probs(apply_fn, variables: dict, images: jnp.ndarray,
                    test_time_flip: bool = False, test_time_rotate: bool = False) -> jnp.ndarray:
  """Log class probabilities [N, K]; with test_time_flip, of the probabilities averaged over each
  image and its horizontal mirror (both through the network in one batch); with test_time_rotate,
  also over the image turned by 90, 180 and 270 degrees (one rotation at a time, so memory stays
  that of one or two views; square images): the views of test_time_views, equally weighted."""
  if test_time_rotate:
    total = None
    for k in range(4):
      log_p = class_log_probs(apply_fn, variables, view_of(images, (k, False)), test_time_flip)
      total = log_p if total is None else jnp.logaddexp(total, log_p)
    return total - jnp.log(4.0)
  if not test_time_flip:
    return jax.nn.log_softmax(apply_fn(variables, images, train=False).astype(jnp.float32), -1)
  n = images.shape[0]
  both = jnp.concatenate([images, view_of(images, (0, True))], axis=0)
  log_p = jax.nn.log_softmax(apply_fn(variables, both, train=False).astype(jnp.float32), -1)
  return jnp.logaddexp(log_p[:n], log_p[n:]) - jnp.log(2.0)


def cross_entropy(logits: jnp.ndarray, labels: jnp.ndarray, label_smoothing: float = 0.0):
  """Per-example softmax cross-entropy with optional label smoothing; `labels` are class indices
  [N] or soft targets [N, K] (as mixup and cutmix make)."""
  num_classes = logits.shape[-1]
  targets = labels if labels.ndim == logits.ndim else jax.nn.one_hot(labels, num_classes)
  if label_smoothing:
    targets = optax.smooth_labels(targets, label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def device_dropout_key(seed: int, step) -> jax.Array:
  """A dropout key for this step and this device: a pure function of (seed, step, device)."""
  step_key = jax.random.fold_in(jax.random.PRNGKey(seed), step)
  return jax.random.fold_in(step_key, lax.axis_index(AXIS))


def train_step(state: TrainState, batch: dict, *, schedule: optax.Schedule, seed: int,
               label_smoothing: float = 0.0, augment_spec: presets.Spec | None = None,
               mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0, num_classes: int = 0,
               ema_decay: float = 0.0, frozen: tuple[str, ...] = (),
               apply_fn: Callable | None = None,
               class_weights: tuple[float, ...] | None = None) -> tuple[TrainState, dict]:
  """One optimisation step on this device's share of the global batch (run under pmap).

  `augment_spec` (augment.where=device) is applied to the images inside the step;
  `mixup_alpha` / `cutmix_alpha` > 0 blend pairs of examples (rockjax/augment/mixing.py);
  `ema_decay` > 0 updates the state's moving averages of params and BatchNorm statistics;
  `frozen` names top-level modules (init_freeze) whose parameters get no gradient: they are
  constants to autodiff, so no backward pass runs for a frozen first part of the network (the
  optimiser also leaves them as they are: rockjax/training/optim.py); `apply_fn` replaces the
  state's (rockjax/training/features.py: the head alone, on cached features);
  `class_weights` (data.class_balance=weights) weight each example's loss by its class (mixed
  examples by their mix of classes); the reported loss stays unweighted.
  """
  apply_fn = apply_fn or state.apply_fn
  dropout_key = device_dropout_key(seed, state.step)
  images = batch['image']
  labels = batch['label']
  if augment_spec is not None:
    images = presets.augment_on_device(jax.random.fold_in(dropout_key, 1), images, augment_spec)
  targets = labels
  if mixing.enabled(mixup_alpha, cutmix_alpha):
    if num_classes < 2:
      raise ValueError(f'mixup/cutmix need num_classes (>= 2), got {num_classes}')
    images, targets, _ = mixing.mix_batch(jax.random.fold_in(dropout_key, 2), images, labels,
                                          num_classes, mixup_alpha, cutmix_alpha)
    labels = jnp.argmax(targets, -1)  # accuracy counts the larger share of each mixed image

  if class_weights is not None:
    weights = jnp.asarray(class_weights, jnp.float32)
    example_weights = (targets @ weights if targets.ndim == 2 else weights[targets])

  def loss_fn(params):
    params = {name: lax.stop_gradient(p) if optim.is_frozen(name, frozen) else p
              for name, p in params.items()}
    logits, updates = apply_fn(
        {'params': params, 'batch_stats': state.batch_stats}, images, train=True,
        rngs={'dropout': dropout_key}, mutable=['batch_stats'])
    loss = cross_entropy(logits, targets, label_smoothing)
    objective = loss.mean() if class_weights is None else (loss * example_weights).mean()
    return objective, (logits, loss, updates['batch_stats'])

  (_, (logits, losses, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  grads = lax.pmean(grads, AXIS)
  batch_stats = lax.pmean(batch_stats, AXIS)
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  updates = jax.tree.map(lambda u: u * state.lr_scale.astype(u.dtype), updates)
  new_params = optax.apply_updates(state.params, updates)
  new_state = state.replace(step=state.step + 1, params=new_params, opt_state=opt_state,
                            batch_stats=batch_stats)
  if ema_decay:
    decay = ema_decay_at(ema_decay, state.step)
    new_state = new_state.replace(
        ema_params=ema_update(state.ema_params, new_params, decay),
        ema_batch_stats=ema_update(state.ema_batch_stats, batch_stats, decay))
  correct = jnp.argmax(logits, -1) == labels
  metrics = dict(loss_sum=lax.psum(losses.sum(), AXIS),
                 correct=lax.psum(correct.sum(), AXIS),
                 count=lax.psum(jnp.asarray(losses.shape[0], jnp.int32), AXIS),
                 learning_rate=schedule(state.step) * state.lr_scale)
  return new_state, metrics


def eval_step(state: TrainState, batch: dict, test_time_flip: bool = False,
              apply_fn: Callable | None = None,
              test_time_rotate: bool = False) -> tuple[dict, jnp.ndarray]:
  """Masked loss and accuracy sums over all devices, and this device's log class probabilities
  (of the EMA weights when kept; averaged over the test-time views: class_log_probs)."""
  logits = class_log_probs(apply_fn or state.apply_fn, inference_variables(state), batch['image'],
                           test_time_flip, test_time_rotate)
  mask = batch['mask']
  losses = cross_entropy(logits, batch['label'])
  correct = (jnp.argmax(logits, -1) == batch['label']) * mask
  metrics = dict(loss_sum=lax.psum((losses * mask).sum(), AXIS),
                 correct=lax.psum(correct.sum(), AXIS),
                 count=lax.psum(mask.sum(), AXIS))
  return metrics, logits


def make_mesh(devices: Sequence[jax.Device]) -> Mesh:
  return Mesh(np.asarray(devices), (AXIS,))


def replicate(tree, mesh: Mesh):
  """Places a pytree on every device of the mesh (what pmap's in_axes=None expects)."""
  return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(batch: dict, mesh: Mesh) -> dict:
  """Puts a [devices, per_device, ...] batch onto the devices, one slice each."""
  return jax.device_put(batch, NamedSharding(mesh, P(AXIS)))


# Several steps per dispatch: a small CNN step on an accelerator takes well under a millisecond, so
# one Python dispatch (and one host-to-device copy) per step would bound throughput. These run K
# train steps inside one compiled call with lax.scan; per-step metrics come back stacked [K].

def scan(body, carry, xs):
  """lax.scan, fully unrolled on CPU: XLA:CPU runs convolutions inside a while loop ~50x slower
  than the same convolutions in straight-line code (measured in BENCHMARKS.md), while GPUs and
  TPUs run the loop as fast and compile it once."""
  return lax.scan(body, carry, xs, unroll=jax.default_backend() == 'cpu')


FEEDS = ('host', 'resident')  # how batches reach the step: from the host, or indexed on device


def _train_on_device_data(state, data, order, first_step, *, step, num_steps: int,
                          per_device: int):
  """`step` on K batches indexed from data resident on the devices (feed='resident')."""
  def one(s, k):
    idx = lax.dynamic_slice_in_dim(order, (first_step + k) * per_device, per_device)
    return step(s, {key: jnp.take(value, idx, axis=0) for key, value in data.items()})
  if num_steps == 1:  # the plain step, without a loop around it
    state, metrics = one(state, 0)
    return state, jax.tree.map(lambda x: x[None], metrics)
  return scan(one, state, jnp.arange(num_steps))


def build_train_step(devices: Sequence[jax.Device], *, feed: str = 'host',
                     steps_per_call: int = 1, per_device: int = 0, **options) -> Callable:
  """The one train step, compiled with pmap over `devices` for a feed; the state is donated.

  `options` are train_step's (augmentation in the step, mixing, EMA, frozen modules, the loss's
  label smoothing, ...: training/feeding.py's step_options). The feed sets the call:
  - 'host', one step a call: (state, batch [devices, per_device, ...]);
  - 'host', steps_per_call > 1: (state, batches [devices, K, per_device, ...]), K steps in one
    call, metrics stacked [K];
  - 'resident': (state, data, order [devices, steps * per_device], first_step), steps_per_call
    steps on batches indexed from data already on the devices, metrics stacked [K].
  """
  step = functools.partial(train_step, **options)
  if feed == 'host':
    body = step if steps_per_call == 1 else (lambda s, batches: scan(step, s, batches))
    in_axes = (None, 0)
  elif feed == 'resident':
    body = functools.partial(_train_on_device_data, step=step, num_steps=steps_per_call,
                             per_device=per_device)
    in_axes = (None, None, 0, None)
  else:
    raise ValueError(f'feed {feed!r} is not one of {FEEDS}')
  return jax.pmap(body, axis_name=AXIS, in_axes=in_axes, out_axes=(None, None),
                  donate_argnums=(0,), devices=devices)


def _eval_on_device_data(state, data, *, num_batches: int, per_device: int, **options) -> dict:
  """eval_step over every batch of this device's resident (padded, masked) evaluation arrays;
  per-batch metric sums stacked [num_batches], summed on the host like the host feed's."""
  def one(_, b):
    batch = {key: lax.dynamic_slice_in_dim(value, b * per_device, per_device)
             for key, value in data.items()}
    return None, eval_step(state, batch, **options)[0]
  return scan(one, None, jnp.arange(num_batches))[1]


def build_eval_step(devices: Sequence[jax.Device], *, feed: str = 'host', num_batches: int = 0,
                    per_device: int = 0, test_time_flip: bool = False,
                    apply_fn: Callable | None = None, test_time_rotate: bool = False) -> Callable:
  """The eval step compiled with pmap over `devices` for a feed:
  - 'host': (state, batch [devices, per_device, ...]) -> (metric sums, log probabilities);
  - 'resident': (state, arrays [devices, num_batches * per_device, ...]) -> metric sums per batch.
  """
  options = dict(test_time_flip=test_time_flip, test_time_rotate=test_time_rotate,
                 apply_fn=apply_fn)
  if feed == 'host':
    return jax.pmap(functools.partial(eval_step, **options), axis_name=AXIS, in_axes=(None, 0),
                    out_axes=(None, 0), devices=devices)
  if feed == 'resident':
    return jax.pmap(functools.partial(_eval_on_device_data, num_batches=num_batches,
                                      per_device=per_device, **options),
                    axis_name=AXIS, in_axes=(None, 0), out_axes=None, devices=devices)
  raise ValueError(f'feed {feed!r} is not one of {FEEDS}')
