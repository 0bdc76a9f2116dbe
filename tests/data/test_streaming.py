"""Streaming a TFDS set (data.in_memory): the same split and pixels as in memory, deterministic
epochs that resume, every validation example counted once, and a run that trains and evaluates."""


import numpy as np
import pytest

tfds = pytest.importorskip('tensorflow_datasets')

import build_rock_photos  # noqa: E402  (scripts/, on sys.path: tests/conftest.py)
from rockjax import schema  # noqa: E402
from rockjax.data import dataset as datasets, streaming, synthetic  # noqa: E402
from rockjax.errors import ConfigError  # noqa: E402
from rockjax.training import loop  # noqa: E402
from helpers import comparable_records, tiny_config  # noqa: E402


@pytest.fixture(scope='module')
def tfds_dir(tmp_path_factory):
  """The rock_photos dataset built from a small generated folder (48 photos, 4 classes)."""
  root = tmp_path_factory.mktemp('streaming')
  synthetic.write_dataset(str(root / 'photos'), num_per_class=12, image_size=32, seed=3)
  build_rock_photos.build(str(root / 'photos'), str(root / 'tfds'))
  return str(root / 'tfds')


def config_for(tfds_dir, **overrides):
  return tiny_config(**dict(dict(data__tfds='rock_photos', data__tfds_data_dir=tfds_dir,
                                 data__val_fraction=0.25), **overrides))


def test_a_streamed_split_holds_the_in_memory_split_and_its_pixels(tfds_dir, tmp_path):
  memory = datasets.load_dataset(config_for(tfds_dir, data__in_memory='true'), None)
  streamed = datasets.load_dataset(config_for(tfds_dir, data__in_memory='false'), None)
  assert streamed.streamed and not memory.streamed
  for a, b in ((memory.train, streamed.train), (memory.val, streamed.val)):
    assert a.paths == b.paths  # no near-copies in this set, so both groupings agree
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.images, b.in_memory().images)
  with pytest.raises(Exception, match='streamed'):
    streamed.train.images  # noqa: B018
  auto = datasets.load_dataset(config_for(tfds_dir, data__memory_budget_mb=0.01), None)
  assert auto.streamed  # 30 images of 16x16x3 are over 0.01 MiB
  assert not datasets.load_dataset(config_for(tfds_dir), None).streamed


def epoch_images(s, epoch, **kwargs):
  args = dict(global_batch=8, num_devices=1, seed=0, epoch=epoch, shuffle_buffer=1000)
  args.update(kwargs)
  return [b['image'].reshape(-1, *b['image'].shape[2:]) for b in streaming.train_batches(s, **args)]


def test_train_batches_are_a_seeded_permutation_of_each_epoch(tfds_dir):
  s = datasets.load_dataset(config_for(tfds_dir, data__in_memory='false'), None).train
  first = epoch_images(s, 0)
  assert len(first) == streaming.steps_per_epoch(s, 8) == len(s) // 8
  np.testing.assert_array_equal(np.stack(first), np.stack(epoch_images(s, 0)))  # same again
  assert not np.array_equal(np.stack(first), np.stack(epoch_images(s, 1)))
  seen = {img.tobytes() for batch in first for img in batch}
  everything = {img.tobytes() for img in s.in_memory().images}
  assert seen <= everything and len(seen) == 8 * len(first)  # each example at most once
  twice = epoch_images(s, 0, repeats=2)
  assert len(twice) == 2 * len(s) // 8
  copies = {}
  for img in (img for batch in twice for img in batch):
    copies[img.tobytes()] = copies.get(img.tobytes(), 0) + 1
  assert max(copies.values()) <= 2


def test_eval_batches_count_every_example_once_over_processes(tfds_dir):
  s = datasets.load_dataset(config_for(tfds_dir, data__in_memory='false',
                                       data__val_fraction=0.5), None).val
  images = s.in_memory().images
  rows, counts = [], []
  for process in range(2):
    batches = list(streaming.eval_batches(s, global_batch=10, num_devices=1,
                                          process_index=process, process_count=2))
    counts.append(len(batches))
    for b in batches:
      keep = b['mask'].reshape(-1) > 0
      index = b['index'].reshape(-1)[keep]
      np.testing.assert_array_equal(b['image'].reshape(-1, *images.shape[1:])[keep],
                                    images[index])
      np.testing.assert_array_equal(b['label'].reshape(-1)[keep], s.labels[index])
      rows += list(index)
  assert counts[0] == counts[1]  # pmap collectives need equal counts
  assert sorted(rows) == list(range(len(s)))


records = comparable_records


def test_a_streamed_run_learns_resumes_to_the_same_epochs_and_evaluates(tfds_dir, tmp_path):
  options = dict(data__in_memory='false', augment__preset='flip_bright', batch_size=8,
                 eval_batch_size=8)
  full = config_for(tfds_dir, num_epochs=3, **options)
  summary = loop.train_and_evaluate(full, str(tmp_path / 'full'))
  assert summary['epochs'] == 3 and summary['num_val'] > 0
  losses = [r['train_loss'] for r in records(tmp_path / 'full')]
  assert losses[-1] < losses[0], losses
  first = config_for(tfds_dir, num_epochs=2, **options)
  loop.train_and_evaluate(first, str(tmp_path / 'resumed'))
  loop.train_and_evaluate(full, str(tmp_path / 'resumed'))
  a, b = records(tmp_path / 'full'), records(tmp_path / 'resumed')
  assert [r['epoch'] for r in b] == [1, 2, 3]
  for ra, rb in zip(a, b):
    for k in ra:
      assert ra[k] == pytest.approx(rb[k], rel=1e-5, abs=1e-6), (ra['epoch'], k)
  from rockjax.serving import evaluation
  report = evaluation.evaluate_workdir(str(tmp_path / "full"), full.eval)
  assert report['num_examples'] == summary['num_val']


def test_streaming_settings_that_cannot_work_are_one_line_errors():
  config = tiny_config()
  config.data.in_memory = 'false'
  with pytest.raises(ConfigError, match='build_rock_photos'):
    schema.validate(config)
  config.data.tfds, config.data.where, config.augment.where = 'rock_photos', 'device', 'device'
  with pytest.raises(ConfigError, match='data.in_memory'):
    schema.validate(config)
  config.data.where, config.data.in_memory = 'host', 'sometimes'
  with pytest.raises(ConfigError, match='in_memory'):
    schema.validate(config)
