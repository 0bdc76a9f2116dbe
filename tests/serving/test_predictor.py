"""The predictor: the best checkpoint (its EMA weights when kept), any batching, clear errors."""

import os
import shutil

import jax
import numpy as np
import pytest

from rockjax import errors, schema
from rockjax.serving import evaluation, export, predictor as inference
from rockjax.training import checkpointing, loop, state as states
from helpers import tiny_config


def test_workdir_without_checkpoints_is_a_clear_error(run, tmp_path):
  config, workdir, _ = run
  with pytest.raises(errors.NoCheckpointError, match='holds no training run'):
    evaluation.evaluate_workdir(str(tmp_path), config.eval)
  # A run that was set up but never reached a checkpoint.
  partial = tmp_path / 'partial'
  partial.mkdir()
  for name in ('config.json', 'class_names.json'):
    shutil.copy(os.path.join(workdir, name), partial / name)
  with pytest.raises(errors.NoCheckpointError, match='no best checkpoint'):
    inference.load_predictor(str(partial))


@pytest.fixture(scope='module')
def ema_flip_run(tmp_path_factory):
  """A run that keeps a weight EMA, scores with test-time flips, and trains with mixup/cutmix."""
  workdir = str(tmp_path_factory.mktemp('ema_flip_run'))
  config = tiny_config(num_epochs=3, ema_decay=0.8, test_time_flip=True,
                       augment__mixup_alpha=0.2, augment__cutmix_alpha=1.0)
  summary = loop.train_and_evaluate(config, workdir)
  return config, workdir, summary


def test_ema_and_flip_run_evaluates_predicts_and_exports_what_training_selected(ema_flip_run,
                                                                                 tmp_path):
  config, workdir, summary = ema_flip_run
  assert summary['epochs'] == 3 and 0.0 < summary['best_val_accuracy'] <= 1.0
  report = evaluation.evaluate_workdir(workdir, config.eval)
  assert report['accuracy'] == pytest.approx(summary['best_val_accuracy'], abs=1e-9)
  predictor = inference.load_predictor(workdir)
  restored = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True)
  try:
    _, state = states.abstract_train_state(config, len(predictor.class_names))
    state, _ = restored.restore_best(state)
  finally:
    restored.close()
  for got, want in zip(jax.tree.leaves(predictor.variables['params']),
                       jax.tree.leaves(state.ema_params)):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))  # the EMA weights
  images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
  probs = predictor.probabilities(images)
  np.testing.assert_allclose(probs, predictor.probabilities(images[:, :, ::-1]), atol=1e-5)
  served = inference.load_predictor(workdir, calibrated=True)  # with the temperature eval fitted
  serve, _ = export.load_saved_model(export.export_saved_model(workdir, str(tmp_path / 'x')))
  np.testing.assert_allclose(serve(images), served.probabilities(images), atol=1e-5)  # flips too


def test_predictor_gives_the_same_probabilities_in_any_batching(run):
  _, workdir, _ = run
  predictor = inference.load_predictor(workdir)
  images = np.random.default_rng(3).integers(0, 256, (37, 16, 16, 3), dtype=np.uint8)
  whole = predictor.probabilities(images, batch_size=64)
  np.testing.assert_allclose(predictor.probabilities(images, batch_size=16), whole, atol=1e-6)
  np.testing.assert_allclose(predictor.probabilities(images[:1], batch_size=1), whole[:1],
                             atol=1e-6)
  np.testing.assert_allclose(whole.sum(1), 1.0, atol=1e-5)
  assert predictor.probabilities(images[:0]).shape == (0, len(predictor.class_names))
  with pytest.raises(ValueError, match='expected images of shape'):
    predictor.probabilities(images[:, :8])


def test_the_standard_ops_model_gives_the_same_probabilities(monkeypatch):
  """Export writes the standard ops (grouped convolution for depthwise, conv for 1x1) whatever
  the run trained with; the probabilities do not change. Lite0's first three stages (3x3 and 5x5
  depthwise, strides 1 and 2, a skip), as every model built in the test is: half the compiling."""
  import jax
  import ml_collections
  from rockjax import configlib, models
  from rockjax.models import efficientnet
  monkeypatch.setattr(efficientnet, 'BASE_STAGES', efficientnet.BASE_STAGES[:3])
  config = schema.base_config()
  config.model.name, config.data.image_size = 'EfficientNetLite0', 32
  model = models.create_model(config.model, 3)
  images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
  variables = jax.jit(lambda: model.init(jax.random.PRNGKey(0), images, train=False))()
  predictor = inference.Predictor(config=ml_collections.ConfigDict(config.to_dict()),
                                  class_names=['a', 'b', 'c'], model=model, variables=variables,
                                  epoch=1)
  standard = predictor.with_standard_ops()
  assert standard.config.model.depthwise_impl == 'xla' and predictor.config.model.conv_impl == 'auto'
  np.testing.assert_allclose(standard.probabilities(images), predictor.probabilities(images),
                             atol=1e-5)
  jaxpr = str(jax.make_jaxpr(lambda x: standard.predict_fn()(variables, x))(images))
  assert 'feature_group_count=96' in jaxpr  # block_1's depthwise conv, one op
  plain = str(jax.make_jaxpr(lambda x: predictor.predict_fn()(variables, x))(images))
  assert 'feature_group_count=96' not in plain  # trained with the shifted multiply-adds (CPU)


def test_with_the_best_checkpoint_gone_eval_names_the_one_it_used(tmp_path, monkeypatch):
  """eval called the latest checkpoint 'the best checkpoint (epoch 3)' while summary.json said 1."""
  from rockjax.training import optim
  update = optim.EarlyStopping.update
  monkeypatch.setattr(optim.EarlyStopping, 'update',  # epoch 1 stays the best
                      lambda self, epoch, accuracy: update(self, epoch, 0.9 if epoch == 1 else 0.1))
  config = tiny_config(num_epochs=3)
  loop.train_and_evaluate(config, str(tmp_path))
  assert inference.load_predictor(str(tmp_path)).checkpoint == 'the best checkpoint'
  shutil.rmtree(tmp_path / 'checkpoints' / '1')
  predictor = inference.load_predictor(str(tmp_path))
  assert predictor.epoch == 3
  assert predictor.checkpoint == 'the checkpoint of epoch 3 (the best, epoch 1, is missing)'
  report = evaluation.evaluate_workdir(str(tmp_path), config.eval)
  assert report['checkpoint_epoch'] == 3 and 'the best, epoch 1, is missing' in report['checkpoint']
