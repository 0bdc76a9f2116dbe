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

AXIS = 'batch'


class TrainState(train_state.TrainState):
  batch_stats: Any = None
  # Multiplies the scheduled learning rate; lowered between epochs by ReduceOnPlateau.
  lr_scale: jax.Array = flax.struct.field(default_factory=lambda: jnp.ones((), jnp.float32))


@functools.lru_cache(maxsize=16)
def _jitted_init(model):
  """One compiled init per model definition (Flax modules are hashable), not one per call."""
  return jax.jit(functools.partial(model.init, train=False))


def create_train_state(model, tx: optax.GradientTransformation, rng: jax.Array,
                       image_size: int) -> TrainState:
  """Initialises parameters and BatchNorm statistics on the host's default device."""
  images = jnp.zeros((1, image_size, image_size, 3), jnp.uint8)
  variables = _jitted_init(model)({'params': rng}, images)
  return TrainState.create(apply_fn=model.apply, params=variables['params'], tx=tx,
                           batch_stats=variables.get('batch_stats', {}),
                           lr_scale=jnp.ones((), jnp.float32))


def cross_entropy(logits: jnp.ndarray, labels: jnp.ndarray, label_smoothing: float = 0.0):
  """Per-example softmax cross-entropy with optional label smoothing."""
  num_classes = logits.shape[-1]
  targets = jax.nn.one_hot(labels, num_classes)
  if label_smoothing:
    targets = optax.smooth_labels(targets, label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def device_dropout_key(seed: int, step) -> jax.Array:
  """A dropout key for this step and this device: a pure function of (seed, step, device)."""
  step_key = jax.random.fold_in(jax.random.PRNGKey(seed), step)
  return jax.random.fold_in(step_key, lax.axis_index(AXIS))


def train_step(state: TrainState, batch: dict, *, schedule: optax.Schedule, seed: int,
               label_smoothing: float = 0.0,
               device_augment: str | None = None) -> tuple[TrainState, dict]:
  """One optimisation step on this device's share of the global batch (run under pmap).

  `device_augment` names a rockjax.device_augment preset applied to the images inside the step.
  """
  dropout_key = device_dropout_key(seed, state.step)
  images = batch['image']
  if device_augment:
    from rockjax import device_augment as dev_aug
    images = dev_aug.augment_batch(jax.random.fold_in(dropout_key, 1), images, device_augment)

  def loss_fn(params):
    logits, updates = state.apply_fn(
        {'params': params, 'batch_stats': state.batch_stats}, images, train=True,
        rngs={'dropout': dropout_key}, mutable=['batch_stats'])
    loss = cross_entropy(logits, batch['label'], label_smoothing)
    return loss.mean(), (logits, loss, updates['batch_stats'])

  (_, (logits, losses, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  grads = lax.pmean(grads, AXIS)
  batch_stats = lax.pmean(batch_stats, AXIS)
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  updates = jax.tree.map(lambda u: u * state.lr_scale.astype(u.dtype), updates)
  new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                            opt_state=opt_state, batch_stats=batch_stats)
  correct = jnp.argmax(logits, -1) == batch['label']
  metrics = dict(loss_sum=lax.psum(losses.sum(), AXIS),
                 correct=lax.psum(correct.sum(), AXIS),
                 count=lax.psum(jnp.asarray(losses.shape[0], jnp.int32), AXIS),
                 learning_rate=schedule(state.step) * state.lr_scale)
  return new_state, metrics


def eval_step(state: TrainState, batch: dict) -> tuple[dict, jnp.ndarray]:
  """Masked loss and accuracy sums over all devices, and this device's logits."""
  logits = state.apply_fn({'params': state.params, 'batch_stats': state.batch_stats},
                          batch['image'], train=False)
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


def pmap_eval_step(devices: Sequence[jax.Device]) -> Callable:
  return jax.pmap(eval_step, axis_name=AXIS, in_axes=(None, 0), out_axes=(None, 0),
                  devices=devices)
