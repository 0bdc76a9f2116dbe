"""The cached-features mode: the head trains alone on the fixed backbone's features, computed once
per image (and pass) into the workdir, and the saved network is the whole network, whose own output
is what the head was scored on."""

import json
import os

import jax
import numpy as np
import pytest
from flax import traverse_util

from rockjax import errors, models
from rockjax.data import folder
from rockjax.serving import evaluation, predictor as inference
from rockjax.training import features, loop
from helpers import tiny_config, write_image


def flat(tree):
  return {'/'.join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(tree).items()}


@pytest.mark.parametrize('flip,rotate', [(False, False), (True, True)])
def test_the_head_trains_on_cached_features_and_the_network_scores_the_same(run, tmp_path, flip,
                                                                              rotate):
  _, source, _ = run
  config = tiny_config(init_from=source, features__enabled=True, num_epochs=4,
                       learning_rate=3e-2, num_devices=2, test_time_flip=flip,
                       test_time_rotate=rotate)
  workdir = str(tmp_path / 'features')
  summary = loop.train_and_evaluate(config, workdir)
  cached = sorted(os.listdir(os.path.join(workdir, features.FOLDER)))
  views = 8 if rotate else 1  # the validation images in every test-time view: 4 turns x 2 mirrors
  assert ([name.split('-')[:2] for name in cached]
          == [['train', 'pass0']] + [['val', 'pass0']] * views)
  # Only the head moved: every other weight and statistic is the source run's.
  tuned = jax.device_get(inference.load_predictor(workdir).variables)
  start = jax.device_get(inference.load_predictor(source).variables)
  for collection in ('params', 'batch_stats'):
    for name, value in flat(start[collection]).items():
      if not name.startswith('Dense_0'):
        np.testing.assert_array_equal(flat(tuned[collection])[name], value, err_msg=name)
  assert json.load(open(os.path.join(workdir, 'init.json')))['frozen'] == ['all']
  # The whole network, evaluated from images (in the same test-time views), scores what the head
  # scored on features.
  report = evaluation.evaluate_workdir(workdir, config.eval)
  assert report['accuracy'] == pytest.approx(summary['best_val_accuracy'], abs=1e-6)
  assert (report['test_time_flip'], report['test_time_rotate']) == (flip, rotate)


def test_a_head_that_reads_earlier_blocks_trains_on_their_features_too(tmp_path):
  """EfficientNet-Lite0 from ImageNet with model.head_blocks: the cached features are the top's and
  the named blocks' pooled outputs, and the whole network scores what the head scored."""
  config = tiny_config(model__name='EfficientNetLite0', model__pretrained='imagenet',
                       model__head_blocks='block_10,block_15', features__enabled=True,
                       data__image_size=32, num_epochs=2, learning_rate=3e-2)
  workdir = str(tmp_path / 'features')
  summary = loop.train_and_evaluate(config, workdir)
  folder_ = os.path.join(workdir, features.FOLDER)
  for name in os.listdir(folder_):
    with np.load(os.path.join(folder_, name)) as cached:
      assert cached['features'].shape[1:] == (1280 + 112 + 320,)
  report = evaluation.evaluate_workdir(workdir, config.eval)
  assert report['accuracy'] == pytest.approx(summary['best_val_accuracy'], abs=1e-6)


def test_cached_features_are_reused_and_keyed_by_what_changes_them(run, tmp_path, monkeypatch):
  _, source, _ = run
  config = tiny_config(init_from=source, features__enabled=True, num_epochs=3,
                       features__passes=2, augment__preset='flip')
  workdir = str(tmp_path / 'features')
  loop.train_and_evaluate(config, workdir)
  names = sorted(os.listdir(os.path.join(workdir, features.FOLDER)))
  assert [n.split('-')[:2] for n in names] == [['train', 'pass0'], ['train', 'pass1'],
                                               ['val', 'pass0']]
  pass0 = np.load(os.path.join(workdir, features.FOLDER, names[0]))['features']
  pass1 = np.load(os.path.join(workdir, features.FOLDER, names[1]))['features']
  assert pass0.shape == pass1.shape and not np.allclose(pass0, pass1)  # flipped images differ
  # A second run in the same workdir computes nothing.
  monkeypatch.setattr(features.FeatureFeed, '_extract', lambda *a: pytest.fail('recomputed'))
  config.num_epochs = 4
  assert loop.train_and_evaluate(config, workdir)['epochs'] == 4
  keys = {features.cache_key(config, 'b', ['x.png'], 'train', 1)}
  other = tiny_config(init_from=source, features__enabled=True, features__passes=2,
                      augment__preset='flip', data__interpolation='bilinear')
  keys.add(features.cache_key(other, 'b', ['x.png'], 'train', 1))
  keys.add(features.cache_key(config, 'c', ['x.png'], 'train', 1))
  keys.add(features.cache_key(config, 'b', ['y.png'], 'train', 1))
  keys.add(features.cache_key(config, 'b', ['x.png'], 'train', 0))
  keys.add(features.cache_key(config, 'b', ['x.png'], 'train', 1, (0, True)))
  # A photo edited in place: the same path, other pixels.
  images = np.zeros((2, 4, 4, 3), np.uint8)
  edited = images.copy()
  edited[1, 2, 3, 0] = 1
  assert folder.pixels_digest(images) != folder.pixels_digest(edited)
  assert folder.pixels_digest(images) == folder.pixels_digest(images.copy())
  keys.add(features.cache_key(config, 'b', ['x.png'], 'train', 1,
                              pixels=folder.pixels_digest(edited)))
  # The features themselves change when the head reads more blocks (model.head_blocks).
  more = tiny_config(init_from=source, features__enabled=True, features__passes=2,
                     augment__preset='flip')
  more.model.head_blocks = 'block_3'  # (an EfficientNet option; only the key is computed here)
  keys.add(features.cache_key(more, 'b', ['x.png'], 'train', 1))
  assert len(keys) == 8


def test_a_photo_edited_in_place_is_featurised_again(run, tmp_path):
  _, source, _ = run
  root = tmp_path / 'photos'
  for c, label in enumerate(('basalt', 'granite')):
    for i in range(8):
      write_image(str(root / label / f'{i}.png'), seed=10 * c + i)
  config = tiny_config(init_from=source, features__enabled=True, num_epochs=1,
                       batch_size=4, data__dir=str(root), data__cache_dir=str(tmp_path / 'cache'))
  workdir = str(tmp_path / 'features')
  loop.train_and_evaluate(config, workdir)
  before = set(os.listdir(os.path.join(workdir, features.FOLDER)))
  write_image(str(root / 'basalt' / '0.png'), seed=99)  # the same path, other pixels
  config.num_epochs = 2
  loop.train_and_evaluate(config, workdir)
  new = set(os.listdir(os.path.join(workdir, features.FOLDER))) - before
  assert len(new) == 1  # the split that holds the photo, computed again; the other one reused


def test_what_the_mode_cannot_do_is_one_config_error(run):
  _, source, _ = run
  cases = [
      (dict(features__enabled=True), 'set model.pretrained'),
      (dict(init_from=source, features__enabled=True, init_freeze='ConvAct_0'),
       'freezes every module but the head already'),
      (dict(init_from=source, features__enabled=True, augment__mixup_alpha=0.2),
       'mixup and CutMix blend images'),
      (dict(init_from=source, features__enabled=True, features__passes=3),
       "3 passes augment .* 'none' has none"),
      (dict(features__passes=0), 'features.passes: must be positive'),
  ]
  for overrides, message in cases:
    with pytest.raises(errors.ConfigError, match=message):
      tiny_config(**overrides)


def test_the_head_averages_views_in_probability():
  head = models.create_model(tiny_config().model, num_classes=3).head()
  params = head.init(jax.random.PRNGKey(0), np.zeros((1, 5), np.float32), train=False)['params']
  variables = {'params': params}  # {HEAD: ...}, as in the whole network's
  feats = np.random.default_rng(0).normal(size=(4, 2, 5)).astype(np.float32)
  out = features._views_output(head, variables, feats)
  probs = [jax.nn.softmax(head.apply({'params': params}, feats[:, v], train=False)) for v in (0, 1)]
  np.testing.assert_allclose(np.exp(out), (probs[0] + probs[1]) / 2, rtol=1e-5, atol=1e-6)


def test_the_backbone_digest_ignores_the_head_only():
  variables = {'params': {'Dense_0': {'kernel': np.ones((2, 2))}, 'ConvAct_0': {'k': np.ones(3)}},
               'batch_stats': {'ConvAct_0': {'mean': np.zeros(3)}}}
  digest = features.backbone_digest(variables)
  variables['params']['Dense_0']['kernel'] = np.zeros((2, 2))
  assert features.backbone_digest(variables) == digest
  variables['batch_stats']['ConvAct_0']['mean'] = np.ones(3)
  assert features.backbone_digest(variables) != digest
