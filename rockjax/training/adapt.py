"""`adapt_to_data`: the recommended recipes fitted to a small photo folder, each change logged.

A student's folder of 20 photos a class should train with the recipe as it is, not stop at a batch
larger than the training set or a warmup longer than the run. The changes follow from the data
alone, so a resumed run makes the same ones; config.json keeps what was asked for.
"""

from __future__ import annotations

from absl import logging

from rockjax.errors import ConfigError


def fit_to_data(config, train_images: int, num_devices: int):
  """With config.adapt_to_data, a copy of `config` fitted to a small training set (the batch
  shrinks to the largest multiple of the device count that fits, warmup is cut to half the run),
  each change logged; the same on every resume, since it follows from the data. Otherwise
  `config` itself."""
  if not config.adapt_to_data:
    return config
  config = config.copy_and_resolve_references()
  if config.batch_size > train_images:
    batch = train_images // num_devices * num_devices
    if batch == 0:
      raise ConfigError(f'{train_images} training images cannot fill one batch on '
                        f'{num_devices} devices')
    logging.warning('adapt_to_data: batch_size %d exceeds the %d training images; using %d.',
                    config.batch_size, train_images, batch)
    config.batch_size = batch
  if config.warmup_epochs > config.num_epochs / 2:
    logging.warning('adapt_to_data: warmup_epochs %s is more than half of num_epochs=%d; using '
                    '%s.', config.warmup_epochs, config.num_epochs, config.num_epochs / 2)
    config.warmup_epochs = config.num_epochs / 2
  return config
