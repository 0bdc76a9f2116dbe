"""The train state and the pure train/eval steps, compiled with `jax.pmap` over local devices.

The state is passed *replicated* (`in_axes=None`) and returned once (`out_axes=None`), as in today's
flax/examples/imagenet. Inside the step, gradients and BatchNorm statistics are averaged over the
'batch' axis with `lax.pmean` (BatchNorm also normalises with global-batch statistics when
`model.sync_batchnorm` is set), so N devices compute what one device would for the same global batch.
Metrics are returned as sums over all devices, so accuracy over padded eval batches is exact.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from rockjax import mixing

AXIS = 'batch'


class TrainState(train_state.TrainState):
  batch_stats: Any = None
  # Multiplies the scheduled learning rate; lowered between epochs by ReduceOnPlateau.
  lr_scale: jax.Array = flax.struct.field(default_factory=lambda: jnp.ones((), jnp.float32))
  # Exponential moving averages of params and BatchNorm statistics (None when config.ema_decay=0);
  # evaluation, prediction and export use them when present.
  ema_params: Any = None
  ema_batch_stats: Any = None


@functools.lru_cache(maxsize=16)
def _jitted_init(model):
  """One compiled init per model definition (Flax modules are hashable), not one per call."""
  return jax.jit(functools.partial(model.init, train=False))


def create_train_state(model, tx: optax.GradientTransformation, rng: jax.Array,
                       image_size: int, ema: bool = False) -> TrainState:
  """Initialises parameters and BatchNorm statistics on the host's default device."""
  images = jnp.zeros((1, image_size, image_size, 3), jnp.uint8)
  variables = _jitted_init(model)({'params': rng}, images)
  state = TrainState.create(apply_fn=model.apply, params=variables['params'], tx=tx,
                            batch_stats=variables.get('batch_stats', {}),
                            lr_scale=jnp.ones((), jnp.float32))
  if ema:  # copies, so that no buffer appears twice in the donated state
    state = state.replace(ema_params=jax.tree.map(jnp.copy, state.params),
                          ema_batch_stats=jax.tree.map(jnp.copy, state.batch_stats))
  return state


def ema_decay_at(decay: float, step) -> jnp.ndarray:
  """The EMA decay used at `step`: min(decay, (1 + step) / (10 + step)), so early averages are
  not dominated by the random initialisation."""
  step = jnp.asarray(step, jnp.float32)
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def ema_update(average, new, decay):
  return jax.tree.map(lambda a, n: decay * a + (1.0 - decay) * n, average, new)


def inference_variables(state: TrainState) -> dict:
  """The variables to evaluate, predict and export with: the EMA ones when the run keeps them."""
  if state.ema_params is not None:
    return {'params': state.ema_params, 'batch_stats': state.ema_batch_stats}
  return {'params': state.params, 'batch_stats': state.batch_stats}


def class_log_probs(apply_fn, variables: dict, images: jnp.ndarray,
                    test_time_flip: bool = False) -> jnp.ndarray:
  """Log class probabilities [N, K]; with test_time_flip, of the probabilities averaged over each
  image and its horizontal mirror (both through the network in one batch)."""
  if not test_time_flip:
    return jax.nn.log_softmax(apply_fn(variables, images, train=False).astype(jnp.float32), -1)
  n = images.shape[0]
  both = jnp.concatenate([images, images[:, :, ::-1]], axis=0)
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
               label_smoothing: float = 0.0, device_augment=None,
               mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0, num_classes: int = 0,
               ema_decay: float = 0.0) -> tuple[TrainState, dict]:
  """One optimisation step on this device's share of the global batch (run under pmap).

  `device_augment` (a rockjax.device_augment.Spec or preset name) is applied to the images inside
  the step; `mixup_alpha` / `cutmix_alpha` > 0 blend pairs of examples (rockjax.mixing); `ema_decay` > 0
  updates the state's moving averages of params and BatchNorm statistics.
  """
  dropout_key = device_dropout_key(seed, state.step)
  images = batch['image']
  labels = batch['label']
  if device_augment:
    from rockjax import device_augment as dev_aug
    images = dev_aug.augment_batch(jax.random.fold_in(dropout_key, 1), images, device_augment)
  targets = labels
  if mixing.enabled(mixup_alpha, cutmix_alpha):
    if num_classes < 2:
      raise ValueError(f'mixup/cutmix need num_classes (>= 2), got {num_classes}')
    images, targets, _ = mixing.mix_batch(jax.random.fold_in(dropout_key, 2), images, labels,
                                          num_classes, mixup_alpha, cutmix_alpha)
    labels = jnp.argmax(targets, -1)  # accuracy counts the larger share of each mixed image

  def loss_fn(params):
    logits, updates = state.apply_fn(
        {'params': params, 'batch_stats': state.batch_stats}, images, train=True,
        rngs={'dropout': dropout_key}, mutable=['batch_stats'])
    loss = cross_entropy(logits, targets, label_smoothing)
    return loss.mean(), (logits, loss, updates['batch_stats'])

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


def eval_step(state: TrainState, batch: dict, test_time_flip: bool = False
              ) -> tuple[dict, jnp.ndarray]:
  """Masked loss and accuracy sums over all devices, and this device's log class probabilities
  (of the EMA weights when kept; averaged with the mirror image under test_time_flip)."""
  logits = class_log_probs(state.apply_fn, inference_variables(state), batch['image'],
                           test_time_flip)
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


def pmap_train_step(devices: Sequence[jax.Device], **step_kwargs) -> Callable:
  """train_step compiled over `devices`; the state is donated (updated in place)."""
  return jax.pmap(functools.partial(train_step, **step_kwargs), axis_name=AXIS,
                  in_axes=(None, 0), out_axes=(None, None), donate_argnums=(0,),
                  devices=devices)


def pmap_eval_step(devices: Sequence[jax.Device], test_time_flip: bool = False) -> Callable:
  return jax.pmap(functools.partial(eval_step, test_time_flip=test_time_flip), axis_name=AXIS,
                  in_axes=(None, 0), out_axes=(None, 0), devices=devices)
