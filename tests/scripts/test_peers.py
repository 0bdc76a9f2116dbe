"""The Keras and PyTorch peers are the same networks as rockjax's, parameter for parameter."""

import os

import jax
import pytest

import peers  # scripts/ (on sys.path: tests/conftest.py)
from rockjax import configlib, models
from helpers import ROOT


def rockjax_params(model_config, size, num_classes=7):
  model = models.create_model(model_config, num_classes)
  x = jax.ShapeDtypeStruct((1, size, size, 3), jax.numpy.uint8)
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jax.numpy.zeros(
      x.shape, x.dtype), train=False))
  return sum(v.size for v in jax.tree.leaves(variables))


@pytest.mark.parametrize('name,size', [('residual', 32), ('rocks', 96), ('pretrained', 64)])
def test_keras_peer_has_rockjax_s_parameters(name, size):
  config = configlib.load_config_file(os.path.join(ROOT, 'configs', f'{name}.py'))
  assert peers.keras_model(config.model, size, 7).count_params() == rockjax_params(
      config.model, size)


@pytest.mark.parametrize('name', ['residual', 'rocks', 'pretrained'])
def test_pytorch_peer_has_rockjax_s_parameters(name):
  torch = pytest.importorskip('torch')
  config = configlib.load_config_file(os.path.join(ROOT, 'configs', f'{name}.py'))
  net = peers.torch_model(config.model, 7)
  assert peers.torch_num_params(net) == rockjax_params(config.model, 32)
  out = net(torch.zeros(2, 3, 32, 32))
  assert tuple(out.shape) == (2, 7)


def test_the_keras_peer_freezes_the_same_modules():
  config = configlib.load_config_file(os.path.join(ROOT, 'configs', 'pretrained.py'))
  model = peers.keras_model(config.model, 64, 7, frozen=('stem', 'block_0'))
  frozen = sorted({layer.name.split('_')[0] + ('_' + layer.name.split('_')[1]
                                               if layer.name.startswith('block_') else '')
                   for layer in model.layers if layer.weights and not layer.trainable})
  assert frozen == ['block_0', 'stem']
