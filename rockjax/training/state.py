"""The train state: parameters, BatchNorm statistics, optimiser state, the plateau learning-rate
scale and (optionally) moving averages of the weights."""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from rockjax import models
from rockjax.training import optim


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


def initial_train_state(config, num_classes: int, schedule, bn_axis_name: str | None,
                        seed: int | None = None):
  """(model, initial train state) of a config as training starts it: the network with the modules
  init_freeze names kept fixed, the optimiser on `schedule`, parameters from `seed` (config.seed by
  default), and the EMA copies when config.ema_decay > 0."""
  model = models.create_model(config.model, num_classes, bn_axis_name=bn_axis_name,
                              frozen=optim.frozen_modules(config))
  state = create_train_state(model, optim.create_optimizer(config, schedule),
                             jax.random.PRNGKey(config.seed if seed is None else seed),
                             config.data.image_size, ema=config.ema_decay > 0)
  return model, state


def abstract_train_state(config, num_classes: int):
  """(model, the train state's shapes and dtypes) of a run's config, without computing anything:
  the structure a checkpoint is restored into."""
  model = models.create_model(config.model, num_classes)
  tx = optim.create_optimizer(config, optim.learning_rate_schedule(config, 1))
  image_size, ema = config.data.image_size, config.ema_decay > 0
  shapes = jax.eval_shape(
      lambda rng: create_train_state(model, tx, rng, image_size, ema=ema), jax.random.PRNGKey(0))
  on_host = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return model, jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=on_host), shapes)


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
