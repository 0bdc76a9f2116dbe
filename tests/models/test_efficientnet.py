"""EfficientNet-Lite: the published layout and parameter counts, shapes, the MBConv block's skip and
stochastic depth, frozen modules and BatchNorm, bf16, and finite-difference gradients."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from rockjax import models, schema
from rockjax.errors import ConfigError
from rockjax.models import efficientnet
from rockjax.training import steps


def lite(name='EfficientNetLite0', num_classes=5, frozen=(), **model_overrides):
  config = schema.base_config()
  config.model.name = name
  for key, value in model_overrides.items():
    config.model[key] = value
  return models.create_model(config.model, num_classes, frozen=frozen)


def shallow(**model_overrides):
  """Lite0 with one block a stage but two in the sixth (8 blocks, not 16): every kind of block (no
  expansion and 6x, 3x3 and 5x5, strides 1 and 2, the identity skip) with half the blocks to
  compile, for the tests of what every block does the same way."""
  return lite(**model_overrides).clone(depth=0.3)


def shapes(model, size=32):
  x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.uint8)
  return jax.eval_shape(functools.partial(model.init, train=False), jax.random.PRNGKey(0), x)


def count(tree) -> int:
  return sum(x.size for x in jax.tree.leaves(tree))


def test_lite0_follows_the_published_table():
  specs = efficientnet.block_specs(1.0, 1.0)
  assert len(specs) == 16
  assert [s[4] for s in specs] == [16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192,
                                   192, 320]
  assert [s[1] for s in specs].count(2) == 4 and specs[0][2] == 1  # first block: no expansion
  assert {s[0] for s in specs[3:5]} == {5}


@pytest.mark.parametrize('name,blocks,values', [
    ('EfficientNetLite0', 16, 4_694_024),  # the ImageNet wheel's tensors, num_batches_tracked aside
    ('EfficientNetLite1', 21, 5_470_344), ('EfficientNetLite2', 21, 6_150_168)])
def test_parameter_counts_with_the_imagenet_head(name, blocks, values):
  variables = shapes(lite(name, 1000))
  assert count(variables) == values
  assert len([k for k in variables['params'] if k.startswith('block_')]) == blocks
  assert variables['params']['Dense_0']['kernel'].shape == (1280, 1000)


def test_lite2_rounds_its_widths_as_efficientnet_does():
  assert [efficientnet.round_channels(c, 1.1) for c in (16, 24, 40, 80, 112, 192, 320)] == [
      16, 24, 48, 88, 120, 208, 352]


@pytest.mark.parametrize('size', [32, 45, 64])
def test_output_and_feature_shapes(size):
  model = lite()
  variables = shapes(model, size)
  x = jax.ShapeDtypeStruct((3, size, size, 3), jnp.uint8)
  logits = jax.eval_shape(functools.partial(model.apply, train=False), variables, x)
  features = jax.eval_shape(functools.partial(model.apply, train=False, features=True),
                            variables, x)
  assert logits.shape == (3, 5) and logits.dtype == jnp.float32
  assert features.shape == (3, 1280)
  assert variables['params']['block_3']['depthwise']['kernel'].shape == (5, 5, 1, 144)


def test_head_blocks_join_their_pooled_outputs_to_the_tops_features():
  """model.head_blocks: the classifier reads the top's pooled features, then each named block's
  pooled output in block order (whatever order the config names them in)."""
  model = shallow(head_blocks='block_4, block_2')
  x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
  init = jax.jit(functools.partial(
      model.init_with_output, train=False,
      capture_intermediates=lambda m, method: method == '__call__' and len(m.scope.path) == 1))
  logits, variables = init(jax.random.PRNGKey(0), x)
  pooled = [np.asarray(variables['intermediates'][name]['__call__'][0]).mean(axis=(1, 2))
            for name in ('top', 'block_2', 'block_4')]
  head = variables['params']['Dense_0']
  assert head['kernel'].shape == (1280 + 40 + 112, 5)
  np.testing.assert_allclose(logits, np.concatenate(pooled, axis=1) @ head['kernel'] + head['bias'],
                             rtol=1e-4, atol=1e-4)
  features = jax.eval_shape(functools.partial(model.apply, train=False, features=True),
                            {k: variables[k] for k in ('params', 'batch_stats')}, x)
  assert features.shape == (3, 1280 + 40 + 112)


@pytest.mark.parametrize('blocks,message', [
    ('block_16', "unknown: ['block_16']"), ('top', "unknown: ['top']"),
    ('block_3,block_3', 'named twice')])
def test_head_blocks_must_name_distinct_blocks(blocks, message):
  config = schema.base_config()
  config.model.name = 'EfficientNetLite0'
  config.model.head_blocks = blocks
  with pytest.raises(ConfigError, match=r'config\.model\.head_blocks: .*' + re.escape(message)):
    models.section.validate(config)
  config.model.name = 'EfficientNetLite1'  # 21 blocks
  config.model.head_blocks = 'block_20'
  models.section.validate(config)
  config.model.name = 'ResidualCNN'
  with pytest.raises(ConfigError, match=r'config\.model\.head_blocks: .*ResidualCNN has no such'):
    models.section.validate(config)


def test_the_skip_and_stochastic_depth():
  block = efficientnet.MBConv(3, 1, 6, 8, drop_rate=0.5)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(64, 4, 4, 8)), jnp.float32)
  variables = block.init(jax.random.PRNGKey(0), x, train=False)
  eval_out = block.apply(variables, x, train=False)
  train_out, _ = block.apply(variables, x, train=True, rngs={'dropout': jax.random.PRNGKey(1)},
                             mutable=['batch_stats'])
  dropped = np.all(np.isclose(np.asarray(train_out), np.asarray(x)), axis=(1, 2, 3))
  assert 15 < dropped.sum() < 49  # about half the examples keep only the skip
  assert not np.allclose(eval_out, x)  # in eval, every example has the residual branch
  strided = efficientnet.MBConv(3, 2, 6, 8)  # no skip where the shape changes
  out = strided.apply(strided.init(jax.random.PRNGKey(0), x, train=False), x, train=False)
  assert out.shape == (64, 2, 2, 8)


def test_frozen_modules_keep_their_statistics_and_get_no_gradient():
  model = shallow(frozen=('stem', 'block_0'))
  x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
  variables = jax.jit(functools.partial(model.init, train=False))(jax.random.PRNGKey(0), x)
  _, updates = jax.jit(functools.partial(model.apply, train=True, mutable=['batch_stats']))(
      variables, x, rngs={'dropout': jax.random.PRNGKey(1)})
  for name in ('stem', 'block_0'):
    assert jax.tree.all(jax.tree.map(np.array_equal, updates['batch_stats'][name],
                                     variables['batch_stats'][name]))
  assert not np.array_equal(updates['batch_stats']['block_1']['project']['BatchNorm_0']['mean'],
                            variables['batch_stats']['block_1']['project']['BatchNorm_0']['mean'])


def test_frozen_batchnorm_trains_with_the_running_statistics():
  model = shallow(freeze_batchnorm=True)
  x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
  variables = jax.jit(functools.partial(model.init, train=False))(jax.random.PRNGKey(0), x)
  model_no_drop = model.clone(dropout=0.0, drop_connect=0.0)
  train_out, updates = jax.jit(functools.partial(model_no_drop.apply, train=True,
                                                 mutable=['batch_stats']))(variables, x)
  eval_out = jax.jit(functools.partial(model_no_drop.apply, train=False))(variables, x)
  np.testing.assert_allclose(train_out, eval_out, rtol=1e-5, atol=1e-5)
  assert jax.tree.all(jax.tree.map(np.array_equal, updates['batch_stats'],
                                   variables['batch_stats']))


def test_bfloat16_compute_keeps_float32_parameters():
  model = lite(dtype='bfloat16')
  variables = shapes(model)
  assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(variables['params']))
  x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.uint8)
  out = jax.eval_shape(functools.partial(model.apply, train=False), variables, x)
  assert out.dtype == jnp.float32


def test_gradients_of_a_block_match_finite_differences():
  block = efficientnet.MBConv(5, 2, 2, 3)
  with jax.enable_x64():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(3, 6, 6, 3)))
    variables = jax.tree.map(lambda v: v.astype(jnp.float64),
                             block.init(jax.random.PRNGKey(0), x, train=False))
    block64 = block.clone(dtype=jnp.float64)

    def loss(params):
      out, _ = block64.apply({'params': params, 'batch_stats': variables['batch_stats']}, x,
                             train=True, mutable=['batch_stats'])
      return (out ** 2).mean()

    # ReLU6 has kinks: a small step keeps the differences on one side of them.
    check_grads(jax.jit(loss), (variables['params'],), order=1, modes=['rev'], eps=1e-7, atol=1e-5,
                rtol=1e-4)


def test_the_train_step_runs_and_every_trained_parameter_gets_a_gradient():
  model = shallow(dropout=0.0, drop_connect=0.0)
  assert len([k for k in shapes(model)['params'] if k.startswith('block_')]) == 8
  x = np.random.default_rng(5).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
  variables = jax.jit(functools.partial(model.init, train=False))(jax.random.PRNGKey(0), x)

  def loss(params):
    logits, _ = model.apply({'params': params, 'batch_stats': variables['batch_stats']}, x,
                            train=True, mutable=['batch_stats'])
    return steps.cross_entropy(logits, jnp.asarray([0, 1, 2, 3])).mean()

  grads = jax.jit(jax.grad(loss))(variables['params'])
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert np.all(np.isfinite(g)) and np.any(np.asarray(g) != 0), jax.tree_util.keystr(path)


def test_the_export_form_computes_the_same_network():
  """model.fold_batchnorm (what TFLite export converts): BatchNorm as one multiply-add and the
  pixel scaling as one subtract and multiply, with the same variables and the same outputs."""
  model, folded = shallow(), shallow(fold_batchnorm=True)
  x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)), jnp.uint8)
  # variables with statistics away from their initial 0 and 1, so that folding them is tested
  variables = jax.jit(lambda key: jax.tree.map(lambda v: v + 0.3 * jnp.abs(jax.random.normal(
      key, v.shape)), model.init(key, x, train=False)))(jax.random.PRNGKey(0))
  assert jax.tree.structure(jax.eval_shape(lambda key: folded.init(key, x, train=False),
                                           jax.random.PRNGKey(0))) == jax.tree.structure(variables)
  apply = lambda m: jax.jit(lambda v: m.apply(v, x, train=False))(variables)
  np.testing.assert_allclose(apply(folded), apply(model), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
def test_pointwise_conv_has_the_gradients_of_a_plain_matmul(dtype):
  """The 1x1 convs' custom backward pass (kept apart from the BatchNorm backward) gives what
  autodiff of x @ kernel gives, in the compute dtype."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 3, 4, 6)), dtype)
  k = jnp.asarray(rng.normal(size=(6, 5)), dtype)
  loss = lambda f: lambda x, k: jnp.sum(jnp.sin(f(x, k).astype(jnp.float32)))
  ours = jax.grad(loss(efficientnet.pointwise), argnums=(0, 1))(x, k)
  plain = jax.grad(loss(lambda x, k: x @ k), argnums=(0, 1))(x, k)
  tol = 1e-5 if dtype == jnp.float32 else 5e-2
  for a, b in zip(ours, plain):
    assert a.dtype == b.dtype == dtype
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=tol,
                               atol=tol)
