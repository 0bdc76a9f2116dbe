"""The train state: created with the model's variables, and abstract (shapes only) for restoring."""

import jax
import jax.numpy as jnp

from rockjax import models
from rockjax.training import optim, state as states
from helpers import tiny_config


def test_abstract_state_has_the_runs_structure_and_holds_no_arrays():
  config = tiny_config(ema_decay=0.9, weight_decay=0.01)
  model, abstract = states.abstract_train_state(config, 5)
  schedule = optim.learning_rate_schedule(config, 1)
  concrete = states.create_train_state(models.create_model(config.model, 5),
                                       optim.create_optimizer(config, schedule),
                                       jax.random.PRNGKey(0), config.data.image_size, ema=True)
  paths = lambda tree: [path for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
  assert paths(abstract) == paths(concrete)
  for a, c in zip(jax.tree.leaves(abstract), jax.tree.leaves(concrete)):
    assert isinstance(a, jax.ShapeDtypeStruct) and not isinstance(a, jax.Array)
    c = jnp.asarray(c)  # the step counter starts as a Python int
    assert a.shape == c.shape and a.dtype == c.dtype
  assert abstract.ema_params is not None
  _, plain = states.abstract_train_state(tiny_config(), 5)
  assert plain.ema_params is None

