"""adapt_to_data: a small folder trains with the recommended recipe as it is; the batch shrinks to
fit, warmup is capped, a too-small test split is not carved, each logged; without it, clear errors."""

import pytest

from helpers import tiny_config, write_image
from rockjax import schema
from rockjax.data import splits
from rockjax.errors import ConfigError
from rockjax.training import adapt, loop


def test_the_batch_shrinks_to_a_multiple_of_the_devices_and_warmup_is_capped(caplog):
  config = schema.base_config()
  config.adapt_to_data, config.batch_size, config.num_epochs, config.warmup_epochs = True, 64, 4, 3.0
  fitted = adapt.fit_to_data(config, 52, num_devices=8)
  assert (fitted.batch_size, fitted.warmup_epochs) == (48, 2.0)
  assert (config.batch_size, config.warmup_epochs) == (64, 3.0)  # what was asked stays as it was
  assert 'batch_size 64 exceeds the 52 training images; using 48' in caplog.text
  assert adapt.fit_to_data(config, 500, num_devices=8).batch_size == 64  # it fits: unchanged
  with pytest.raises(ConfigError, match='cannot fill one batch on 8 devices'):
    adapt.fit_to_data(config, 5, num_devices=8)
  config.adapt_to_data = False
  assert adapt.fit_to_data(config, 52, num_devices=8) is config


def test_without_it_a_long_warmup_is_an_error_naming_the_setting():
  config = schema.base_config()
  config.num_epochs, config.warmup_epochs = 1, 2.0
  with pytest.raises(ConfigError, match='adapt_to_data=True'):
    schema.validate(config)
  config.adapt_to_data = True
  schema.validate(config)


def test_a_test_split_below_the_minimum_is_not_carved(caplog):
  assert not splits.wants_test(0.1, 200, 50)
  assert 'No test split: 10% of 200 photos is 20, fewer than data.min_test_images=50' in caplog.text
  assert splits.wants_test(0.1, 600, 50) and splits.wants_test(0.1, 200, 0)
  assert not splits.wants_test(0.0, 600, 50)


def test_a_student_folder_trains_with_the_recipes_batch_and_warmup(tmp_path):
  for c, name in enumerate(('basalt', 'granite')):
    for i in range(12):
      write_image(str(tmp_path / 'photos' / name / f'{i}.png'), seed=100 * c + i)
  config = tiny_config(num_epochs=1, batch_size=64, warmup_epochs=2.0, adapt_to_data=True,
                       data__dir=str(tmp_path / 'photos'), data__test_fraction=0.1,
                       data__min_test_images=50)
  summary = loop.train_and_evaluate(config, str(tmp_path / 'run'))
  assert summary['final_epoch'] == 1
  assert not (tmp_path / 'run' / 'split.json').read_text().count('"test"')
