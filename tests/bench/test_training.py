"""rockjax/bench/training.py: the step alone, an epoch through the configured feed, the input
pipeline alone and a fresh predictor, built as the trainer builds them, on a tiny network."""

import jax
import numpy as np

from helpers import tiny_config
from rockjax import bench


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state.params))]


def test_train_step_alone_trains_and_counts_its_work():
  config = tiny_config()
  step = bench.TrainStep(config, num_classes=4, num_calls=3, count_flops=True)
  assert step.images == config.batch_size * 3
  assert step.num_params > 0 and step.compile_seconds > 0 and step.flops > 0
  before = _leaves(step.state)
  step.run()
  assert any(not np.allclose(a, b) for a, b in zip(before, _leaves(step.state)))
  several = bench.TrainStep(config, num_classes=4, steps_per_call=2, num_calls=1,
                            augment='flip')
  assert several.images == config.batch_size * 2 and several.flops is None
  several.run()


def test_in_memory_dataset_holds_out_the_last_images():
  images = np.arange(10 * 4 * 4 * 3, dtype=np.uint8).reshape(10, 4, 4, 3)
  data = bench.in_memory_dataset(images, np.arange(10) % 2, num_val=3, class_names=['a', 'b'])
  assert len(data.train) == 7 and len(data.val) == 3 and data.class_names == ['a', 'b']
  np.testing.assert_array_equal(data.val.images, images[7:])
  assert data.train.labels.dtype == np.int32 and not data.streamed


def test_epoch_runner_trains_one_epoch_per_run_through_the_device_feed():
  config = tiny_config(data__where='device', augment__where='device', augment__preset='flip')
  rng = np.random.default_rng(0)
  data = bench.in_memory_dataset(rng.integers(0, 256, (80, 16, 16, 3), dtype=np.uint8),
                                 np.arange(80) % 4, num_val=16, class_names=list('abcd'))
  runner = bench.EpochRunner(config, data)
  assert runner.epoch == 1 and runner.first_epoch_seconds > 0
  assert runner.steps_per_epoch == bench.steps_per_epoch(64, config.batch_size)
  assert runner.images == runner.steps_per_epoch * config.batch_size
  before = _leaves(runner.state)
  runner.run()
  assert runner.epoch == 2
  assert any(not np.allclose(a, b) for a, b in zip(before, _leaves(runner.state)))


def test_host_batches_is_one_epoch_of_the_host_pipeline():
  config = tiny_config(augment__preset='flip', augment__where='host')
  rng = np.random.default_rng(0)
  data = bench.in_memory_dataset(rng.integers(0, 256, (70, 16, 16, 3), dtype=np.uint8),
                                 np.arange(70) % 4, num_val=6, class_names=list('abcd'))
  batches = list(bench.host_batches(config, data.train, epoch=1, threads=1))
  assert len(batches) == 64 // config.batch_size
  assert batches[0]['image'].shape == (1, config.batch_size, 16, 16, 3)
  assert set(np.concatenate([b['label'].ravel() for b in batches])) <= {0, 1, 2, 3}


def test_fresh_predictor_gives_probabilities():
  config = tiny_config()
  predictor = bench.fresh_predictor(config, list('abc'))
  p = predictor.probabilities(np.zeros((5, 16, 16, 3), np.uint8), batch_size=2)
  assert p.shape == (5, 3)
  np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
