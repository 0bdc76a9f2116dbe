"""Class activation maps: Grad-CAM computed by autodiff equals the classifier-weight form rockjax
uses; maps for every network; eval and predict write them."""

import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rockjax import models, schema
from rockjax.models.layers import HEAD, MAP, global_pool
from rockjax.serving import predict, predictor as predictors, saliency
from helpers import assert_png, write_image


def test_the_map_is_grad_cam(run):
  """Grad-CAM by the book (the class score's gradient with respect to the last feature map,
  averaged per channel, weighting the channels) gives the same map, up to its scale."""
  config, workdir, _ = run
  predictor = predictors.load_predictor(workdir)
  images = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
  variables = predictor.variables
  fmap = predictor.model.apply(variables, images, train=False, features=MAP)
  head = variables['params'][HEAD]
  classes = predictor.probabilities(images).argmax(axis=1)

  def score(a, i):  # the class score as a function of the feature map (pool, then the classifier)
    return (global_pool(a) @ head['kernel'] + head['bias'])[i, classes[i]]

  expected = []
  for i in range(len(images)):
    grad = jax.grad(score)(fmap, i)[i]  # [h, w, C]
    cam = np.maximum(np.einsum('hwc,c->hw', np.asarray(fmap[i]), np.asarray(grad.mean((0, 1)))), 0)
    expected.append(cam / max(cam.max(), 1e-12))
  got = saliency.class_maps(predictor, images)
  small = np.asarray(jax.image.resize(jnp.asarray(np.stack(expected)), got.shape, 'bilinear'))
  np.testing.assert_allclose(got, np.clip(small, 0, 1), atol=1e-5)
  assert got.shape == (3, 16, 16) and got.min() >= 0 and got.max() <= 1


def test_with_head_blocks_the_map_is_grad_cam_of_the_last_layers_share():
  """A classifier that also reads earlier blocks (model.head_blocks): the class score's gradient
  with respect to the last map is its own rows of the kernel, the first ones."""
  config = schema.base_config()
  config.model.name, config.model.head_blocks = 'EfficientNetLite0', 'block_14'
  model = models.create_model(config.model, 3)
  images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
  rng = np.random.default_rng(1)  # random weights and unit statistics, without compiling init
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), images, train=False))
  variables = {
      'params': jax.tree.map(lambda s: rng.normal(0.0, 0.1, s.shape).astype(np.float32),
                             shapes['params']),
      'batch_stats': jax.tree_util.tree_map_with_path(
          lambda path, s: np.full(s.shape, "'var'" in jax.tree_util.keystr(path), np.float32),
          shapes['batch_stats'])}
  head = variables['params'][HEAD]
  predictor = types.SimpleNamespace(model=model, variables=variables)
  fmap = saliency._map_fn(model.apply)(variables, images)  # the program class_maps runs
  # For each image, the class its map favours most (so the map is not all zeros)
  classes = np.asarray(global_pool(fmap) @ head['kernel'][:fmap.shape[-1]]).argmax(axis=1)
  block = rng.normal(size=(2, 192))  # the block's pooled features: the gradient is the same for any

  def score(a, i):  # the class score with the top's map as the variable, the block's part fixed
    whole = jnp.concatenate([global_pool(a), block], axis=1)
    return (whole @ head['kernel'] + head['bias'])[i, classes[i]]

  expected = []
  for i in range(len(images)):
    grad = jax.grad(score)(fmap, i)[i]
    cam = np.maximum(np.einsum('hwc,c->hw', np.asarray(fmap[i]), np.asarray(grad.mean((0, 1)))), 0)
    expected.append(cam / max(cam.max(), 1e-12))
  assert all(e.max() == 1.0 for e in expected)  # a map, not all zeros
  got = saliency.class_maps(predictor, images, classes)
  small = np.asarray(jax.image.resize(jnp.asarray(np.stack(expected)), got.shape, 'bilinear'))
  np.testing.assert_allclose(got, np.clip(small, 0, 1), atol=1e-5)


@pytest.mark.parametrize('name', ['ResidualCNN', 'SeedCNN', 'EfficientNetLite0'])
def test_every_network_gives_its_last_feature_map(name):
  config = schema.base_config()
  config.model.name = name
  model = models.create_model(config.model, 3)
  x = jnp.zeros((1, 64, 64, 3), jnp.uint8)
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, train=False))
  fmap = jax.eval_shape(lambda v: model.apply(v, x, train=False, features=MAP), variables)
  assert fmap.ndim == 4 and fmap.shape[-1] == variables['params'][HEAD]['kernel'].shape[0]


def test_overlay_is_the_greyed_photo_reddened_where_the_map_is_high():
  image = np.full((4, 4, 3), 100, np.uint8)
  cam = np.zeros((4, 4))
  cam[0, 0] = 1.0
  out = saliency.overlay(image, cam)
  assert out.dtype == np.uint8 and out.shape == (4, 4, 3)
  assert tuple(out[1, 1]) == (100, 100, 100)
  assert tuple(out[0, 0]) == (193, 40, 40)  # 0.4 * 100 + 0.6 * 255; 0.4 * 100


def test_eval_and_predict_write_the_maps(run, tmp_path):
  from rockjax.serving import evaluation
  config, workdir, _ = run
  e = config.eval.copy_and_resolve_references()
  e.output_dir = str(tmp_path / 'eval')
  report = evaluation.evaluate_workdir(workdir, e)
  if report['most_confident_errors']:
    assert_png(str(tmp_path / 'eval' / 'most_confident_errors_explained.png'))
  photos = [write_image(str(tmp_path / 'in' / f'rock{i}.png'), seed=i) for i in range(3)]
  p = config.predict.copy_and_resolve_references()
  p.output_dir, p.latency_runs, p.explain, p.explain_limit = str(tmp_path / 'out'), 0, True, 2
  predict.predict_workdir(workdir, photos, p)
  written = sorted(os.listdir(tmp_path / 'out' / 'explained'))
  assert written == ['0000_rock0.png', '0001_rock1.png']  # explain_limit
  assert_png(str(tmp_path / 'out' / 'explained' / written[0]))
