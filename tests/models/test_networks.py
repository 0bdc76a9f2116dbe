"""Models: output shapes, the reference parameter count, train/eval behaviour, gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from rockjax import models, schema
from rockjax.training import steps


def init(model, size, batch=2):
  x = jnp.zeros((batch, size, size, 3), jnp.uint8)
  return jax.jit(functools.partial(model.init, train=False))({'params': jax.random.PRNGKey(0)}, x)


def shapes(model, size, batch=2):
  """Variable shapes and dtypes without compiling anything."""
  x = jax.ShapeDtypeStruct((batch, size, size, 3), jnp.uint8)
  return jax.eval_shape(functools.partial(model.init, train=False),
                        {'params': jax.random.PRNGKey(0)}, x)


def count(tree) -> int:
  return sum(x.size for x in jax.tree.leaves(tree))


@pytest.mark.parametrize('name', ['ResidualCNN', 'SeedCNN'])
@pytest.mark.parametrize('size,num_classes', [(32, 4), (60, 7), (64, 2)])
def test_output_shapes(name, size, num_classes):
  config = schema.base_config()
  if name == 'SeedCNN':
    config.model.name, config.model.widths = 'SeedCNN', (16, 32, 64)
  model = models.create_model(config.model, num_classes)
  variables = shapes(model, size)
  x = jax.ShapeDtypeStruct((3, size, size, 3), jnp.uint8)
  logits = jax.eval_shape(functools.partial(model.apply, train=False), variables, x)
  assert logits.shape == (3, num_classes)
  assert logits.dtype == jnp.float32
  assert set(variables) == {'params', 'batch_stats'}


def test_residual_parameter_count_matches_reference_keras_model():
  # The reference Keras model: 2,369,412 weights including BatchNorm moving mean/variance.
  model = models.create_model(schema.base_config().model, num_classes=4)
  variables = shapes(model, 32)
  assert count(variables) == 2_369_412
  assert count(variables['batch_stats']) == 2 * 1456  # mean + var of every BatchNorm channel


def test_seed_cnn_matches_reference_layout():
  config = schema.base_config()
  config.model.name, config.model.widths = 'SeedCNN', (16, 32, 64)
  variables = shapes(models.create_model(config.model, 4), 32)
  kernels = [v['Conv_0']['kernel'].shape for k, v in sorted(variables['params'].items())
             if k.startswith('ConvAct')]
  assert kernels == [(7, 7, 3, 16), (5, 5, 16, 32), (3, 3, 32, 64)]


def test_bfloat16_compute_keeps_float32_params_and_logits():
  config = schema.base_config()
  config.model.dtype = 'bfloat16'
  model = models.create_model(config.model, 4)
  variables = shapes(model, 32)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables['params']))
  x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.uint8)
  logits = jax.eval_shape(functools.partial(model.apply, train=False), variables, x)
  assert logits.dtype == jnp.float32


def test_uint8_and_unit_float_inputs_agree():
  model = models.ResidualCNN(num_classes=3, widths=(8, 8), shortcut_kernels=(3, 3))
  variables = init(model, 32)
  x = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
  a = model.apply(variables, x, train=False)
  b = model.apply(variables, x.astype(np.float32) / 255.0, train=False)
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_train_mode_updates_batch_stats_and_uses_dropout_eval_mode_does_not():
  model = models.ResidualCNN(num_classes=3, widths=(8, 8), shortcut_kernels=(3, 3), dropout=0.5)
  variables = init(model, 32)
  x = np.random.default_rng(2).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
  e1 = model.apply(variables, x, train=False)
  e2 = model.apply(variables, x, train=False)
  np.testing.assert_array_equal(e1, e2)
  t1, upd = model.apply(variables, x, train=True, rngs={'dropout': jax.random.PRNGKey(1)},
                        mutable=['batch_stats'])
  t2, _ = model.apply(variables, x, train=True, rngs={'dropout': jax.random.PRNGKey(2)},
                      mutable=['batch_stats'])
  assert not np.allclose(t1, t2)  # different dropout masks
  changed = jax.tree.map(lambda a, b: bool(np.any(a != b)), upd['batch_stats'],
                         variables['batch_stats'])
  assert all(jax.tree.leaves(changed))


@pytest.mark.parametrize('order', ['relu_bn', 'bn_relu'])
def test_block_order_option(order):
  model = models.ResidualCNN(num_classes=2, widths=(4,), shortcut_kernels=(3,), order=order,
                             dropout=0.0)
  variables = init(model, 8)
  x = np.random.default_rng(3).random((2, 8, 8, 3)).astype(np.float32)
  # relu_bn ends each block in BatchNorm (values of both signs); bn_relu in a ReLU (non-negative).
  # Train mode, so BatchNorm normalises with batch statistics.
  feats = model.apply(variables, x, train=True, capture_intermediates=True,
                      mutable=['intermediates', 'batch_stats'])[1]['intermediates']
  stem = np.asarray(feats['ConvAct_0']['__call__'][0])
  assert (stem.min() < 0) == (order == 'relu_bn')


def test_check_grads_finite_differences_on_tiny_model():
  model = models.ResidualCNN(num_classes=3, stem_features=2, widths=(3,), convs_per_stage=2,
                             shortcut_kernels=(3,), dropout=0.0)
  x = np.random.default_rng(4).random((3, 8, 8, 3))
  labels = jnp.asarray([0, 1, 2])
  with jax.enable_x64():
    variables = jax.tree.map(lambda v: v.astype(jnp.float64), init(model, 8, batch=3))
    x = jnp.asarray(x, jnp.float64)
    model64 = model.clone(dtype=jnp.float64)

    def loss(params):
      logits, _ = model64.apply({'params': params, 'batch_stats': variables['batch_stats']}, x,
                                train=True, mutable=['batch_stats'])
      return steps.cross_entropy(logits, labels).mean()

    # float64 and a small step: the finite differences must not straddle ReLU or max-pool kinks.
    check_grads(jax.jit(loss), (variables['params'],), order=1, modes=['rev'], atol=1e-6,
                rtol=1e-5, eps=1e-7)


def test_loss_gradient_is_finite_and_nonzero_for_every_parameter():
  config = schema.base_config()
  model = models.create_model(config.model, 4)
  variables = init(model, 32, batch=8)
  rng = np.random.default_rng(5)
  x = rng.integers(0, 256, (8, 32, 32, 3)).astype(np.uint8)
  y = rng.integers(0, 4, 8)

  def loss(params):
    logits, _ = model.apply({'params': params, 'batch_stats': variables['batch_stats']}, x,
                            train=True, rngs={'dropout': jax.random.PRNGKey(0)},
                            mutable=['batch_stats'])
    return steps.cross_entropy(logits, y).mean()

  grads = jax.jit(jax.grad(loss))(variables['params'])
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    g = np.asarray(g)
    assert np.all(np.isfinite(g)), path
    assert np.any(g != 0), f'zero gradient for {jax.tree_util.keystr(path)}'


def test_unknown_model_name_is_an_error():
  config = schema.base_config()
  config.model.name = 'ResNet9000'
  with pytest.raises(ValueError, match='ResNet9000'):
    models.create_model(config.model, 4)


@pytest.mark.parametrize('h,k,cin', [(1, 3, 4), (2, 3, 5), (4, 5, 3), (7, 7, 3), (6, 4, 2)])
def test_conv_as_matmul_equals_xla_convolution_and_its_gradients(h, k, cin):
  import jax.numpy as jnp
  from jax import lax
  rng = np.random.default_rng(h * 10 + k)
  x = jnp.asarray(rng.normal(size=(3, h, h + 1, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, cin, 6)), jnp.float32)
  ref = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), 'SAME',
                                              dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(jax.jit(models.conv_as_matmul)(x, w), ref(x, w), rtol=1e-5,
                             atol=1e-5)
  grads = lambda f: jax.jit(jax.grad(lambda x, w: (f(x, w) ** 2).sum(), argnums=(0, 1)))(x, w)
  g_ref, g_mm = grads(ref), grads(models.conv_as_matmul)
  for a, b in zip(g_mm, g_ref):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_conv_impls_share_parameters_and_outputs():
  from helpers import tiny_config
  images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
  outs, trees = [], []
  for impl in ('xla', 'matmul', 'auto'):
    config = tiny_config(model__conv_impl=impl)
    model = models.create_model(config.model, 4)
    variables = jax.jit(functools.partial(model.init, train=False))(jax.random.PRNGKey(0), images)
    trees.append(jax.tree.map(np.shape, variables))
    outs.append(np.asarray(jax.jit(functools.partial(model.apply, train=False))(variables, images)))
  assert trees[0] == trees[1] == trees[2]
  np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(outs[0], outs[2], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('shape', [(2, 8, 8, 3), (1, 7, 5, 2), (3, 2, 2, 4)])
def test_max_pool_2x2_equals_flax_max_pool(shape):
  import flax.linen as nn
  x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
  np.testing.assert_array_equal(models.max_pool_2x2(x), nn.max_pool(x, (2, 2), strides=(2, 2)))
  g = jax.grad(lambda x: (models.max_pool_2x2(x) ** 2).sum())(x)
  g_ref = jax.grad(lambda x: (nn.max_pool(x, (2, 2), strides=(2, 2)) ** 2).sum())(x)
  np.testing.assert_allclose(g, g_ref, rtol=1e-6)  # no ties in random data


def test_bfloat16_convolutions_and_matmuls_run_in_bfloat16():
  config = schema.base_config()
  config.model.dtype = 'bfloat16'
  model = models.create_model(config.model, 4)
  x = jnp.zeros((2, 32, 32, 3), jnp.uint8)
  variables = jax.jit(functools.partial(model.init, train=False))(jax.random.PRNGKey(0), x)
  jaxpr = jax.make_jaxpr(functools.partial(model.apply, train=False))(variables, x)
  heavy = [e for e in jaxpr.jaxpr.eqns
           if e.primitive.name in ('conv_general_dilated', 'dot_general')]
  assert heavy and all(v.aval.dtype == jnp.bfloat16 for e in heavy for v in e.invars)
