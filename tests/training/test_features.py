"""The cached-features mode: the head trains alone on the fixed backbone's features, computed once
per image (and pass) into the workdir, and the saved network is the whole network, whose own output
is what the head was scored on."""

import json
import os

import jax
import numpy as np
import pytest
from flax import traverse_util

from rockjax import errors
from rockjax.serving import evaluation, predictor as inference
from rockjax.training import features, loop
from helpers import tiny_config


def flat(tree):
  return {'/'.join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(tree).items()}


def test_the_head_trains_on_cached_features_and_the_network_scores_the_same(run, tmp_path):
  _, source, _ = run
  config = tiny_config(init_from=source, features__enabled=True, num_epochs=4,
                       learning_rate=3e-2, num_devices=2)
  workdir = str(tmp_path / 'features')
  summary = loop.train_and_evaluate(config, workdir)
  cached = sorted(os.listdir(os.path.join(workdir, features.FOLDER)))
  assert [name.split('-')[:2] for name in cached] == [['train', 'pass0'], ['val', 'pass0']]
  # Only the head moved: every other weight and statistic is the source run's.
  tuned = jax.device_get(inference.load_predictor(workdir).variables)
  start = jax.device_get(inference.load_predictor(source).variables)
  for collection in ('params', 'batch_stats'):
    for name, value in flat(start[collection]).items():
      if not name.startswith('Dense_0'):
        np.testing.assert_array_equal(flat(tuned[collection])[name], value, err_msg=name)
  assert json.load(open(os.path.join(workdir, 'init.json')))['frozen'] == ['all']
  # The whole network, evaluated from images, scores what the head scored on features.
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
  assert len(keys) == 5


def test_what_the_mode_cannot_do_is_one_config_error(run):
  _, source, _ = run
  cases = [
      (dict(features__enabled=True), 'set model.pretrained'),
      (dict(init_from=source, features__enabled=True, init_freeze='ConvAct_0'),
       'freezes every module but the head already'),
      (dict(init_from=source, features__enabled=True, augment__mixup_alpha=0.2),
       'mixup and CutMix blend images'),
      (dict(init_from=source, features__enabled=True, test_time_flip=True),
       'not computed from cached features'),
      (dict(init_from=source, features__enabled=True, features__passes=3),
       "3 passes augment .* 'none' has none"),
      (dict(features__passes=0), 'features.passes: must be positive'),
  ]
  for overrides, message in cases:
    with pytest.raises(errors.ConfigError, match=message):
      tiny_config(**overrides)


def test_the_backbone_digest_ignores_the_head_only():
  variables = {'params': {'Dense_0': {'kernel': np.ones((2, 2))}, 'ConvAct_0': {'k': np.ones(3)}},
               'batch_stats': {'ConvAct_0': {'mean': np.zeros(3)}}}
  digest = features.backbone_digest(variables)
  variables['params']['Dense_0']['kernel'] = np.zeros((2, 2))
  assert features.backbone_digest(variables) == digest
  variables['batch_stats']['ConvAct_0']['mean'] = np.ones(3)
  assert features.backbone_digest(variables) != digest
