"""Feeding the steps: the device-resident path trains on exactly the host path's batches, K steps
per dispatch change only rounding, resuming gives the same epochs, and bad settings are refused."""

import json
import os

import numpy as np
import pytest

from rockjax import errors, schema
from rockjax.training import feeding, loop
from helpers import comparable_records, tiny_config

records = comparable_records


def recipe(**overrides):
  """Device augmentation, mixup/CutMix, dropout, a weight EMA and test-time flips: everything
  that runs inside the compiled step, on 2 devices."""
  return tiny_config(num_epochs=2, num_devices=2, augment__where='device',
                     augment__preset='strong', augment__mixup_alpha=0.2,
                     augment__cutmix_alpha=1.0, ema_decay=0.9, model__dropout=0.1,
                     test_time_flip=True, eval_batch_size=48, **overrides)


@pytest.fixture(scope='module')
def host_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('host'))
  loop.train_and_evaluate(recipe(), workdir)
  return records(workdir)


def test_device_resident_data_gives_the_host_paths_metrics_exactly(host_run, tmp_path):
  loop.train_and_evaluate(recipe(data__where='device'), str(tmp_path))
  assert records(tmp_path) == host_run


@pytest.mark.parametrize('where', ['host', 'device'])
def test_several_steps_per_dispatch_change_only_rounding(host_run, tmp_path, where):
  loop.train_and_evaluate(recipe(data__where=where, steps_per_dispatch=4), str(tmp_path))
  got = records(tmp_path)
  assert [r['step'] for r in got] == [r['step'] for r in host_run]
  for a, b in zip(got, host_run):
    for key in ('train_loss', 'train_accuracy', 'val_loss', 'val_accuracy', 'learning_rate'):
      assert a[key] == pytest.approx(b[key], rel=1e-3, abs=1e-4), (a['epoch'], key)
  with open(tmp_path / 'metrics.jsonl') as f:
    raw = [json.loads(line) for line in f]
  # Epoch 1's rate leaves out the dispatch that compiled; with one dispatch for the whole epoch
  # (4 steps or fewer) nothing is left to time, and it says so rather than divide by ~0 seconds.
  assert (raw[0]['images_per_s'] is None) == (raw[0]['step'] <= 4)
  assert 0 < raw[1]['images_per_s'] < 1e5


def test_device_path_resumes_to_the_same_epochs(host_run, tmp_path):
  """One epoch, then the same command with two: the epochs of an uninterrupted run (host_run's,
  which the device path matches exactly)."""
  config = recipe(data__where='device')
  first = config.copy_and_resolve_references()
  first.num_epochs = 1
  loop.train_and_evaluate(first, str(tmp_path))
  assert len(records(tmp_path)) == 1
  loop.train_and_evaluate(config, str(tmp_path))
  assert records(tmp_path) == host_run


def test_host_augmentation_cannot_feed_device_resident_data():
  config = tiny_config(augment__preset='flip')
  config.data.where = 'device'
  with pytest.raises(errors.ConfigError, match='config.data.where: data.where=device'):
    schema.validate(config)
  config.augment.preset = 'none'  # nothing to do on the host: fine
  schema.validate(config)


def test_data_over_the_device_budget_is_refused_before_training(tmp_path):
  config = tiny_config(data__where='device', data__device_memory_mb=1, data__image_size=32,
                       data__synthetic__num_per_class=200)  # 600 x 3 KiB training images
  with pytest.raises(errors.ConfigError, match='needs [0-9]+ MiB on each device'):
    loop.train_and_evaluate(config, str(tmp_path))
  assert not os.path.exists(tmp_path / 'metrics.jsonl')


def test_per_step_metrics_come_back_from_scalars_or_stacks():
  plain = dict(count=np.int32(8), loss_sum=np.float32(1.0))
  stacked = dict(count=np.array([8, 8]), loss_sum=np.array([2.0, 3.0]))
  steps = feeding.split_steps([plain, stacked])
  assert [float(s['loss_sum']) for s in steps] == [1.0, 2.0, 3.0]


def test_repeats_multiply_the_steps_and_both_paths_still_agree(tmp_path):
  for where in ('host', 'device'):
    loop.train_and_evaluate(tiny_config(num_epochs=1, data__repeats=3, data__where=where,
                                        augment__where='device', augment__preset='flip'),
                            str(tmp_path / where))
  once = records(tmp_path / 'host')
  assert once[0]['step'] == 3 * 72 // 32  # the generated set's 72 training images, 3 passes
  assert records(tmp_path / 'device') == once


def test_class_weights_are_inverse_frequencies_averaging_one_over_the_images():
  labels = np.array([0, 0, 0, 1])
  w = feeding.class_weights(labels, 3)
  np.testing.assert_allclose(w[:2], [2 / 3, 2.0], rtol=1e-6)  # 4 / (2 present classes * count)
  assert w[2] == 0.0  # a class with no training image
  assert np.mean(w[labels]) == pytest.approx(1.0)


@pytest.mark.parametrize('balance,where', [('weights', 'host'), ('sampler', 'host'),
                                           ('sampler', 'device')])
def test_class_balance_trains_on_every_path(tmp_path, balance, where):
  config = tiny_config(num_epochs=1, data__class_balance=balance, data__where=where,
                       augment__where='device' if where == 'device' else 'host')
  summary = loop.train_and_evaluate(config, str(tmp_path))
  assert np.isfinite(summary['final_val_accuracy'])


def test_a_streamed_set_cannot_be_sampled_class_balanced():
  with pytest.raises(errors.ConfigError, match='class_balance'):
    schema.validate(tiny_config(data__class_balance='sampler', data__tfds='mnist',
                                data__dir='', data__in_memory='false'))
