"""The model registry: one entry per network; a network added from outside (here, from a test) is
built, configured, validated and trained by name with no other change."""

import flax.linen as nn
import jax
import numpy as np
import pytest

from rockjax import errors, models, schema
from rockjax.models import layers, registry
from helpers import tiny_config


class TinyNet(layers.Network):
  """Global average pool of a 1x1 conv: the smallest network the trainer can run."""
  num_classes: int
  tiny_width: int = 4

  @nn.compact
  def __call__(self, images, train: bool, features: bool = False):
    x = layers.Conv(self.tiny_width, 1, dtype=self.dtype)(images.astype(self.dtype) / 255.0)
    return layers.classifier_head(nn.relu(x), self.num_classes, self.dtype, features=features)


def _validate(config):
  from rockjax import checks
  checks.positive(config, 'model.tiny_width')


TINY = registry.Network(
    name='TinyNet', build=lambda m, num_classes, **kw: TinyNet(num_classes, m.tiny_width, **kw),
    min_image_size=lambda m: 4, fields=dict(tiny_width=4), validate=_validate)


def test_the_shipped_networks_are_registered():
  assert registry.names()[:2] == ('ResidualCNN', 'SeedCNN')
  assert {'EfficientNetLite0', 'EfficientNetLite1', 'EfficientNetLite2'} <= set(registry.names())
  assert set(registry.get('EfficientNetLite0').weights) == {'imagenet'}
  assert not registry.get('ResidualCNN').weights


def test_an_unknown_name_is_one_config_error_listing_the_networks():
  with pytest.raises(errors.ConfigError, match=r"unknown model 'ResNet9000'.*ResidualCNN"):
    registry.get('ResNet9000')
  config = schema.base_config()
  config.model.name = 'ResNet9000'
  with pytest.raises(errors.ConfigError, match='config.model.name'):
    schema.validate(config)


def test_a_network_registered_from_a_test_trains_by_name(tmp_path):
  from rockjax.training import loop
  with registry.registered(TINY):
    config = schema.base_config()
    assert config.model.tiny_width == 4  # its field joined the model section
    config = tiny_config(model__name='TinyNet', model__tiny_width=6, num_epochs=1)
    model = models.create_model(config.model, 3)
    variables = model.init(jax.random.PRNGKey(0), np.zeros((1, 16, 16, 3), np.uint8), train=False)
    assert variables['params']['Conv_0']['kernel'].shape == (1, 1, 3, 6)
    summary = loop.train_and_evaluate(config, str(tmp_path / 'run'))
    assert summary['epochs'] == 1 and np.isfinite(summary['final_val_accuracy'])
    with pytest.raises(errors.ConfigError, match='config.model.tiny_width: must be positive'):
      tiny_config(model__name='TinyNet', model__tiny_width=0)
  assert 'TinyNet' not in registry.names()
  assert 'tiny_width' not in schema.base_config().model


def test_registering_twice_or_with_a_conflicting_default_is_refused():
  with pytest.raises(ValueError, match='already registered'):
    registry.register(registry.get('ResidualCNN'))
  clash = registry.Network(name='Clash', build=TINY.build, min_image_size=lambda m: 4,
                           fields=dict(widths=(1, 2)))
  with registry.registered(clash):
    with pytest.raises(ValueError, match=r'Clash declares config.model.widths=\(1, 2\)'):
      schema.base_config()


def test_pretrained_weights_are_checked_against_the_network():
  with pytest.raises(errors.ConfigError, match='ResidualCNN has no pretrained weights'):
    tiny_config(model__pretrained='imagenet')
  # A recipe's frozen blocks under another network: the weights are named first, the likelier
  # mistake, not the blocks that follow from them.
  with pytest.raises(errors.ConfigError, match='model.pretrained.*ResidualCNN has no pretrained'):
    tiny_config(model__pretrained='imagenet', init_freeze='stem:block_10')
  with pytest.raises(errors.ConfigError, match="'places365'.*the pretrained weights"):
    tiny_config(model__name='EfficientNetLite0', model__pretrained='places365',
                data__image_size=32)


def test_the_minimum_input_size_comes_from_the_network():
  with pytest.raises(errors.ConfigError, match='data.image_size: 16 px is too small for '
                     'EfficientNetLite0'):
    tiny_config(model__name='EfficientNetLite0')
  with pytest.raises(errors.ConfigError, match='minimum 8 px'):
    tiny_config(data__image_size=4)


def test_init_freeze_takes_names_and_ranges_in_the_network_s_order(tmp_path):
  from rockjax.training import optim
  config = tiny_config(model__name='EfficientNetLite0', model__pretrained='imagenet',
                       data__image_size=32, init_freeze='stem:block_2, top')
  assert optim.frozen_modules(config) == ('stem', 'block_0', 'block_1', 'block_2', 'top')
  assert registry.get('EfficientNetLite1').modules(config.model)[-2:] == ('block_20', 'top')
  for spec, message in (('stem:blok_2', "'blok_2' is not one of EfficientNetLite0's top-level "
                                        'modules: stem, block_0'),
                        ('block_3:stem', 'runs backwards'),
                        ('stem:block_1:block_2', 'a range is first:last')):
    with pytest.raises(errors.ConfigError, match=f'config.init_freeze: .*{message}'):
      tiny_config(model__name='EfficientNetLite0', model__pretrained='imagenet',
                  data__image_size=32, init_freeze=spec)
  resnet = tiny_config(init_from=str(tmp_path), init_freeze='ConvAct_0:ResidualStage_0')
  assert optim.frozen_modules(resnet) == ('ConvAct_0', 'ResidualStage_0')
