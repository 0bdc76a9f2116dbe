"""Depthwise convolution: the shifted multiply-adds equal XLA's grouped convolution, forward and
gradients, with TensorFlow's 'SAME' padding, for every stride and kernel the networks use."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from rockjax.models import depthwise


@pytest.mark.parametrize('size,kernel,stride', [((9, 9), 3, 1), ((8, 8), 3, 2), ((7, 10), 5, 2),
                                                ((6, 5), 5, 1), ((1, 1), 3, 2), ((3, 4), 5, 2),
                                                ((5, 7), 7, 1), ((7, 9), 5, 3), ((4, 4), 7, 2),
                                                ((1, 1), 5, 2), ((2, 9), 5, 4)])
def test_shifted_equals_grouped_convolution_and_its_gradients(size, kernel, stride):
  rng = np.random.default_rng(sum(size) + kernel + stride)
  x = jnp.asarray(rng.normal(size=(2, *size, 6)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, 1, 6)), jnp.float32)
  # Compiled: each program once, rather than op by op (6 s a case in the suite)
  ref = jax.jit(lambda x, w: depthwise.depthwise_conv(x, w, stride, 'xla'))(x, w)
  out = jax.jit(lambda x, w: depthwise.depthwise_conv(x, w, stride, 'shifted'))(x, w)
  assert out.shape == ref.shape == (2, -(-size[0] // stride), -(-size[1] // stride), 6)
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
  loss = lambda impl: lambda x, w: (depthwise.depthwise_conv(x, w, stride, impl) ** 2).sum()
  for a, b in zip(jax.jit(jax.grad(loss('shifted'), argnums=(0, 1)))(x, w),
                  jax.jit(jax.grad(loss('xla'), argnums=(0, 1)))(x, w)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_shifted_gradients_match_finite_differences():
  rng = np.random.default_rng(0)
  with jax.enable_x64():
    x = jnp.asarray(rng.normal(size=(2, 5, 6, 3)))
    w = jnp.asarray(rng.normal(size=(3, 3, 1, 3)))
    check_grads(jax.jit(lambda x, w: depthwise.depthwise_conv(x, w, 2, 'shifted')), (x, w),
                order=2, modes=['rev'])


def test_same_padding_puts_the_odd_pixel_after():
  assert depthwise.same_padding(8, 3, 2) == (0, 1)  # TensorFlow: out 4, total pad 1
  assert depthwise.same_padding(7, 5, 2) == (2, 2)
  assert depthwise.same_padding(10, 5, 1) == (2, 2)
  assert depthwise.same_padding(1, 3, 2) == (1, 1)


def test_auto_is_shifted_on_cpu_and_bad_input_is_refused():
  assert depthwise.resolve('auto') == 'shifted'  # the tests run on CPU
  with pytest.raises(ValueError, match='depthwise impl'):
    depthwise.resolve('winograd')
  with pytest.raises(ValueError, match=r'\(k, k, 1, 4\)'):
    depthwise.depthwise_conv(jnp.zeros((1, 4, 4, 4)), jnp.zeros((3, 3, 4, 4)))


def test_platform_picks_each_form_where_the_program_runs():
  """'platform' lowers both forms, for an export that runs on several platforms: the shifted one
  on CPU (here), the grouped op elsewhere; exported for CPU and CUDA, both are in the program and
  the CPU runs the shifted one."""
  from jax import export as jax_export
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 7, 7, 4)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, 1, 4)), jnp.float32)
  fn = lambda x, w: depthwise.depthwise_conv(x, w, 2, 'platform')
  np.testing.assert_allclose(jax.jit(fn)(x, w), depthwise.depthwise_conv(x, w, 2, 'xla'),
                             rtol=1e-5, atol=1e-5)
  exported = jax_export.export(jax.jit(fn), platforms=('cpu', 'cuda'))(x, w)
  text = exported.mlir_module()
  assert exported.platforms == ('cpu', 'cuda')
  assert 'feature_group_count = 4' in text  # the grouped op is there, for CUDA
  np.testing.assert_allclose(exported.call(x, w), depthwise.depthwise_conv(x, w, 2, 'shifted'),
                             rtol=1e-6, atol=1e-6)


def test_images_per_block_is_the_largest_divisor_that_fits():
  assert depthwise.images_per_block(32, 100, 1000) == 8  # 10 fit; 8 divides 32
  assert depthwise.images_per_block(6, 100, 350) == 3
  assert depthwise.images_per_block(7, 100, 350) == 1  # a prime batch: one image a block
  assert depthwise.images_per_block(4, 5000, 1000) == 1  # an image larger than a block
  assert depthwise.images_per_block(4, 10, 1000) == 4  # all at once


@pytest.mark.parametrize('stride,kernel', [(1, 5), (2, 3)])
def test_kernel_gradient_taken_in_blocks_of_images_equals_the_grouped_convolution(
    monkeypatch, stride, kernel):
  """The custom backward pass sums the kernel gradient a few images at a time (to stay in the
  cache); with a block smaller than the batch it must still equal XLA's gradient."""
  rng = np.random.default_rng(stride)
  x = jnp.asarray(rng.normal(size=(6, 7, 8, 5)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, 1, 5)), jnp.float32)
  image_bytes = (11 * 12 + 7 * 8) * 5 * 4  # padded input + output gradient of one image, at most
  monkeypatch.setattr(depthwise, 'KERNEL_GRAD_BLOCK_BYTES', 2 * image_bytes)  # 2 images a block
  assert depthwise.images_per_block(6, image_bytes) == 2
  loss = lambda impl: lambda x, w: (jnp.sin(depthwise.depthwise_conv(x, w, stride, impl))).sum()
  for a, b in zip(jax.jit(jax.grad(loss('shifted'), argnums=(0, 1)))(x, w),
                  jax.jit(jax.grad(loss('xla'), argnums=(0, 1)))(x, w)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
