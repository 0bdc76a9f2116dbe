"""Fine-tuning from a finished run: weights carried over (head kept or re-initialised), frozen
modules fixed, architecture mismatches refused in one line, provenance recorded, resume independent
of the source."""

import json
import os
import shutil

import jax
import numpy as np
import pytest
from flax import traverse_util

from rockjax import errors
from rockjax.serving import predictor as inference
from rockjax.training import finetune, loop, state as states
from helpers import tiny_config, write_image


def flat(tree):
  return {'/'.join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(tree).items()}


def source_variables(workdir):
  return jax.device_get(inference.load_predictor(workdir).variables)


def fresh_state(config, num_classes):
  model, abstract = states.abstract_train_state(config, num_classes)
  del abstract
  from rockjax.training import optim
  return states.create_train_state(model, optim.create_optimizer(
      config, optim.learning_rate_schedule(config, 1)), jax.random.PRNGKey(1),
      config.data.image_size)


def three_class_folder(root):
  for c, name in enumerate(('andesite', 'gneiss', 'schist')):
    for i in range(12):
      write_image(os.path.join(str(root), name, f'{i}.png'), seed=100 * c + i)
  return str(root)


def test_same_classes_carry_every_weight_over(run):
  config, workdir, _ = run
  state, record = finetune.initialise_from(tiny_config(init_from=workdir), fresh_state(config, 4),
                                           ['basalt', 'granite', 'marble', 'sandstone'])
  source = source_variables(workdir)
  for name, value in flat(source['params']).items():
    np.testing.assert_array_equal(flat(state.params)[name], value, err_msg=name)
  for name, value in flat(source['batch_stats']).items():
    np.testing.assert_array_equal(flat(state.batch_stats)[name], value, err_msg=name)
  assert record['head'] == 'kept' and record['source_workdir'] == os.path.abspath(workdir)
  assert record['source_checkpoint_epoch'] == inference.load_predictor(workdir).epoch
  assert len(record['source_config_hash']) == 12


def test_other_classes_get_a_new_head_and_keep_the_rest(run):
  config, workdir, _ = run
  fresh = fresh_state(config, 3)
  state, record = finetune.initialise_from(tiny_config(init_from=workdir), fresh,
                                           ['andesite', 'gneiss', 'schist'])
  source = flat(source_variables(workdir)['params'])
  got = flat(state.params)
  assert record['head'] == 're-initialised' and got['Dense_0/kernel'].shape[-1] == 3
  np.testing.assert_array_equal(got['Dense_0/kernel'], flat(fresh.params)['Dense_0/kernel'])
  for name in got:
    if not name.startswith('Dense_0'):
      np.testing.assert_array_equal(got[name], source[name], err_msg=name)


def test_a_different_architecture_is_one_error_naming_the_parameter(run, tmp_path):
  config, workdir, _ = run
  wider = tiny_config(init_from=workdir, model__widths=(8, 24))
  with pytest.raises(errors.ConfigError, match=r"'ResidualStage_1/BatchNorm_0/bias' has shape "
                                               r"\(16,\) in .* but \(24,\) here"):
    finetune.initialise_from(wider, fresh_state(wider, 4), ['a', 'b', 'c', 'd'])
  deeper = tiny_config(init_from=workdir, model__widths=(8, 16, 16),
                       model__shortcut_kernels=(3, 3, 3))
  with pytest.raises(errors.ConfigError, match="ResidualStage_2.* exists in this run's model"):
    finetune.initialise_from(deeper, fresh_state(deeper, 4), ['a', 'b', 'c', 'd'])
  with pytest.raises(errors.ConfigError, match='not a training run'):
    finetune.initialise_from(tiny_config(init_from=os.path.dirname(workdir)),
                             fresh_state(config, 4), ['a'])
  started = tmp_path / 'stopped_before_its_first_checkpoint'
  shutil.copytree(workdir, started, ignore=shutil.ignore_patterns('checkpoints'))
  os.makedirs(started / 'checkpoints')
  with pytest.raises(errors.ConfigError, match=r'config\.init_from: no best checkpoint in '):
    finetune.initialise_from(tiny_config(init_from=str(started)), fresh_state(config, 4), ['a'])
  with pytest.raises(errors.ConfigError, match='init_freeze.*top-level modules'):
    finetune.initialise_from(tiny_config(init_from=workdir, init_freeze='Stem'),
                             fresh_state(config, 4), ['a'])
  with pytest.raises(errors.ConfigError, match='init_freeze'):
    tiny_config(init_freeze='ConvAct_0')  # nothing to freeze without init_from
  with pytest.raises(errors.ConfigError, match='both name the starting weights'):
    tiny_config(init_from=workdir, model__name='EfficientNetLite0', model__pretrained='imagenet',
                data__image_size=32)


def test_starting_from_the_imagenet_weights(tmp_path):
  """EfficientNet-Lite0 from its ImageNet weights: every weight but the head's is ImageNet's, the
  frozen modules stay so (parameters and statistics), and the rest train. Here the classifier also
  reads two earlier blocks (model.head_blocks): the shipped weights fit the network all the same."""
  from rockjax import pretrained
  photos = three_class_folder(tmp_path / 'photos')
  config = tiny_config(num_epochs=1, batch_size=12, data__dir=photos, data__image_size=32,
                       model__name='EfficientNetLite0', model__pretrained='imagenet',
                       init_freeze='stem:block_13', model__dropout=0.2,  # a short backward
                       model__head_blocks='block_10,block_15')
  target = str(tmp_path / 'tuned')
  summary = loop.train_and_evaluate(config, target)
  assert summary['epochs'] == 1 and np.isfinite(summary['final_val_accuracy'])
  record = json.load(open(os.path.join(target, 'init.json')))
  assert record['pretrained'] == 'imagenet' and record['head'] == 're-initialised'
  assert record['weights_sha256'] == pretrained.weights_file(config.model).sha256
  imagenet = pretrained.load(config.model, os.environ['ROCKJAX_CACHE_DIR'])
  tuned = source_variables(target)
  for collection in ('params', 'batch_stats'):
    got, want = flat(tuned[collection]), flat(imagenet[collection])
    for name in want:
      if name.startswith(('stem/',) + tuple(f'block_{i}/' for i in range(14))):
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
  got, want = flat(tuned['params']), flat(imagenet['params'])
  assert got['Dense_0/kernel'].shape == (1280 + 112 + 320, 3)
  assert not np.array_equal(got['block_15/project/kernel'], want['block_15/project/kernel'])


def test_fine_tuning_trains_frozen_modules_stay_and_resume_needs_no_source(run, tmp_path):
  _, workdir, _ = run
  source_dir = str(tmp_path / 'source')
  shutil.copytree(workdir, source_dir)
  photos = three_class_folder(tmp_path / 'photos')
  config = tiny_config(num_epochs=1, batch_size=8, data__dir=photos, init_from=source_dir,
                       init_freeze='ConvAct_0', init_lr_multiplier=0.5, data__image_size=24)
  target = str(tmp_path / 'tuned')
  summary = loop.train_and_evaluate(config, target)
  assert summary['epochs'] == 1
  record = json.load(open(os.path.join(target, 'init.json')))
  assert record['frozen'] == ['ConvAct_0'] and record['source_image_size'] == 16
  tuned_variables, source_variables_ = source_variables(target), source_variables(source_dir)
  tuned, source = flat(tuned_variables['params']), flat(source_variables_['params'])
  for name in tuned:
    if name.startswith('ConvAct_0'):
      np.testing.assert_array_equal(tuned[name], source[name], err_msg=name)
  # A frozen module is a fixed function: its BatchNorm keeps the source's running statistics.
  for name, value in flat(source_variables_['batch_stats']['ConvAct_0']).items():
    np.testing.assert_array_equal(flat(tuned_variables['batch_stats']['ConvAct_0'])[name], value)
  assert not np.array_equal(tuned['ResidualStage_1/ConvAct_0/Conv_0/kernel'],
                            source['ResidualStage_1/ConvAct_0/Conv_0/kernel'])
  # The run is self-contained: with the source gone, it resumes and evaluates.
  shutil.rmtree(source_dir)
  config.num_epochs = 2
  assert loop.train_and_evaluate(config, target)['epochs'] == 2
  assert inference.load_predictor(target).class_names == ['andesite', 'gneiss', 'schist']
