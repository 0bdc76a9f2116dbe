"""Configs: the shipped files validate, bad values name their key, saved configs load and compare."""

import json
import os

import pytest

from rockjax import configlib, schema
from helpers import ROOT, tiny_config

CONFIGS = ['configs/residual.py', 'configs/baseline.py', 'configs/rocks.py', 'configs/pretrain.py',
           'configs/finetune.py', 'configs/pretrained.py', 'configs/pretrained_features.py']
# What a config leaves to the command line (a placeholder), with a value that satisfies it.
REQUIRED = {'configs/pretrain.py': ('data.dir', '/photos'),
            'configs/finetune.py': ('init_from', 'runs/pretrain')}


@pytest.mark.parametrize('path', CONFIGS)
def test_shipped_configs_validate_and_have_the_documented_keys(path):
  config = configlib.load_config_file(os.path.join(ROOT, path))
  if path in REQUIRED:
    configlib.set_value(config, *REQUIRED[path])
  schema.validate(config)
  for key in ('num_epochs', 'batch_size', 'learning_rate', 'seed', 'model.dropout',
              'data.image_size'):
    assert configlib.unknown_key_message(config, key) is None, key


def test_residual_defaults_are_the_reference_recipe():
  c = configlib.load_config_file(os.path.join(ROOT, 'configs/residual.py'))
  assert (c.model.name, tuple(c.model.widths), c.model.dropout) == ('ResidualCNN',
                                                                    (32, 64, 128, 256), 0.2)
  assert (c.learning_rate, c.batch_size, c.data.image_size) == (1e-4, 32, 32)
  assert (c.schedule, c.plateau.factor, c.plateau.patience, c.plateau.min_lr) == (
      'plateau', 0.5, 3, 1e-5)
  assert c.early_stopping_patience == 10 and c.data.val_fraction == 0.25
  assert c.data.repeats == 10  # the reference's ten augmented copies of every photo per epoch
  assert (c.augment.preset, c.augment.where) == ('flip_bright', 'device')


@pytest.mark.parametrize('key,value,expected', [
    ('batch_size', 0, 'config.batch_size'),
    ('learning_rate', -1.0, 'config.learning_rate'),
    ('learning_rate', float('nan'), 'config.learning_rate'),
    ('model.dropout', 1.0, 'config.model.dropout'),
    ('schedule', 'linear', 'config.schedule'),
    ('model.name', 'ResNet50', 'config.model.name'),
    ('data.val_fraction', 0.0, 'config.data.val_fraction'),
    ('data.interpolation', 'cubic-ish', 'config.data.interpolation'),
    ('model.shortcut_kernels', (3,), 'config.model.shortcut_kernels'),
    ('augment.preset', 'rotate', 'config.augment'),
    ('ema_decay', 1.0, 'config.ema_decay'),
    ('eval.test_time_flip', 'yes', 'config.eval.test_time_flip'),
    ('eval.label_issues_method', 'cleanlab', 'config.eval.label_issues_method'),
    ('ema_decay', -0.5, 'config.ema_decay'),
    ('augment.mixup_alpha', -0.2, 'config.augment.mixup_alpha'),
    ('augment.cutmix_alpha', float('inf'), 'config.augment.cutmix_alpha'),
    ('augment.crop_min_scale', 0.0, 'config.augment.crop_min_scale'),
    ('augment.crop_min_scale', 1.5, 'config.augment.crop_min_scale'),
    ('augment.colour_jitter', 1.0, 'config.augment.colour_jitter'),
])
def test_bad_values_name_their_key(key, value, expected):
  config = tiny_config()
  configlib.set_value(config, key, value)
  with pytest.raises(configlib.ConfigError, match=expected.replace('.', r'\.')):
    schema.validate(config)


def test_image_too_small_for_the_network_depth_is_explained():
  config = schema.base_config()
  config.data.image_size = 8
  with pytest.raises(configlib.ConfigError, match='halves the image 5 times'):
    schema.validate(config)


def test_unknown_key_suggests_close_matches():
  config = schema.base_config()
  message = configlib.unknown_key_message(config, 'model.dropuot')
  assert "did you mean 'dropout'" in message
  assert configlib.unknown_key_message(config, 'model.dropout') is None
  assert 'config has no field' in configlib.unknown_key_message(config, 'nonsense')


def test_save_load_round_trip_and_differences(tmp_path):
  config = tiny_config()
  configlib.save(config, str(tmp_path / 'c.json'))
  loaded = schema.load(str(tmp_path / 'c.json'))
  assert configlib.differences(config, loaded) == []
  loaded.model.dropout = 0.3
  loaded.num_epochs = 9
  assert configlib.differences(config, loaded) == ['model.dropout', 'num_epochs']
  assert configlib.differences(config, loaded, ignore=('num_epochs',)) == ['model.dropout']


def test_config_saved_before_a_field_existed_loads_with_its_default(tmp_path):
  """A run saved by an older rockjax (no ema_decay, no augment.mixup_alpha) still resumes."""
  config = tiny_config()
  saved = json.loads(configlib.to_json(config))
  del saved['ema_decay'], saved['augment']['mixup_alpha']
  (tmp_path / 'old.json').write_text(json.dumps(saved))
  loaded = schema.load(str(tmp_path / 'old.json'))
  assert loaded.ema_decay == 0.0 and loaded.augment.mixup_alpha == 0.0
  assert configlib.differences(loaded, config) == []
  saved['model']['dropout'] = 0.4  # a real difference is still reported
  (tmp_path / 'old.json').write_text(json.dumps(saved))
  assert configlib.differences(schema.load(str(tmp_path / 'old.json')), config) == [
      'model.dropout']


@pytest.mark.parametrize('content,message', [
    (None, 'does not exist'),
    ('folder', 'is not a file'),
    ('def get_config(:\n', 'syntax error at line 1'),
    ('raise RuntimeError("no data here")\n', 'failed to run: RuntimeError: no data here'),
    ('x = 1\n', 'defines no get_config'),
    ('def get_config():\n  return 1 / 0\n', 'get_config\\(\\) failed: ZeroDivisionError'),
    ('def get_config():\n  return {"a": 1}\n', 'returned a dict, not an ml_collections'),
])
def test_every_broken_config_file_is_a_config_error_naming_it(tmp_path, content, message):
  path = tmp_path / 'my_config.py'
  if content == 'folder':
    path.mkdir()
  elif content is not None:
    path.write_text(content)
  with pytest.raises(configlib.ConfigError, match=message) as error:
    configlib.load_config_file(str(path))
  assert 'my_config.py' in str(error.value)


def test_override_keys_are_checked_against_the_config_file():
  residual = os.path.join(ROOT, 'configs', 'residual.py')
  configlib.check_arguments([f'--config={residual}', '--config.model.dropout=0.1'])
  with pytest.raises(configlib.ConfigError, match="did you mean 'dropout'"):
    configlib.check_arguments(['--config', residual, '--config.model.dropuot=0.1'])
  configlib.check_arguments(['--workdir=x'])  # no --config: absl reports that itself


@pytest.mark.parametrize('path', sorted(REQUIRED))
def test_a_field_left_to_the_command_line_is_an_error_until_it_is_set(path):
  config = configlib.load_config_file(os.path.join(ROOT, path))
  key, value = REQUIRED[path]
  with pytest.raises(configlib.ConfigError, match=f'config.{key}: this config needs it set'):
    schema.validate(config)
  configlib.set_value(config, key, value)
  schema.validate(config)


def test_pretraining_may_name_a_tfds_set_instead_of_a_folder():
  config = configlib.load_config_file(os.path.join(ROOT, 'configs/pretrain.py'))
  config.data.tfds = 'rock_photos'
  schema.validate(config)  # data.dir stays unset: the TFDS set is the data


@pytest.mark.parametrize('path,expected', [
    ('configs/pretrain.py', {'data.dir', 'data.image_size', 'num_epochs', 'data.val_fraction',
                             'data.test_fraction', 'data.where', 'augment.where'}),
    ('configs/finetune.py', {'init_from'}),
])
def test_pretrain_and_finetune_are_the_recommended_recipe_but_for_their_fields(path, expected):
  """Both read configs/rocks.py, so the network cannot drift from the recommended one."""
  rocks = configlib.load_config_file(os.path.join(ROOT, 'configs/rocks.py'))
  config = configlib.load_config_file(os.path.join(ROOT, path))
  assert set(configlib.differences(rocks, config)) == expected
  assert (config.init_from is None) == (path == 'configs/finetune.py')


def test_the_fast_mode_is_the_pretrained_recipe_with_its_head_alone_on_cached_features():
  recipe = configlib.load_config_file(os.path.join(ROOT, 'configs/pretrained.py'))
  fast = configlib.load_config_file(os.path.join(ROOT, 'configs/pretrained_features.py'))
  assert set(configlib.differences(recipe, fast)) == {
      'features.enabled', 'init_freeze', 'num_epochs', 'batch_size', 'data.image_size',
      'model.head_blocks'}
  assert fast.test_time_flip  # scored with mirror images too, from their cached features
  assert recipe.model.name == fast.model.name == 'EfficientNetLite0'
  assert recipe.model.pretrained == fast.model.pretrained == 'imagenet'


def test_every_config_file_is_listed_here():
  shipped = {f'configs/{name}' for name in os.listdir(os.path.join(ROOT, 'configs'))
             if name.endswith('.py')}
  # configs/run.py is not a recipe: it reads a finished run's config (tests/test_cli.py)
  assert shipped == set(CONFIGS) | {'configs/run.py'}
