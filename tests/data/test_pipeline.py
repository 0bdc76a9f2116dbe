"""The tf.data host pipeline: batch shapes, per-epoch shuffling, labels with their images,
determinism under parallel augmentation, and per-process shares."""

import numpy as np
import pytest

from rockjax.augment import presets
from rockjax.data import pipeline
from helpers import tiny_config


def make_data(n=70, size=16, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
  # Encode the example index in the first pixel, so batches can be traced back to examples.
  images[:, 0, 0, 0] = np.arange(n) % 256
  labels = (np.arange(n) % 4).astype(np.int32)
  return images, labels


def collect(**kwargs):
  images, labels = make_data()
  return list(pipeline.train_batches(images, labels, **kwargs))


def test_train_batch_shapes_and_dtypes():
  batches = collect(global_batch=16, num_devices=4, seed=0, epoch=1)
  assert len(batches) == 70 // 16
  for b in batches:
    assert b['image'].shape == (4, 4, 16, 16, 3) and b['image'].dtype == np.uint8
    assert b['label'].shape == (4, 4) and b['label'].dtype == np.int32


def test_each_epoch_is_a_new_permutation_without_repeats():
  ids = {}
  for epoch in (1, 2):
    batches = collect(global_batch=10, num_devices=1, seed=0, epoch=epoch)
    ids[epoch] = np.concatenate([b['image'][..., 0, 0, 0].ravel() for b in batches])
    assert len(set(ids[epoch].tolist())) == len(ids[epoch]) == 70
  assert not np.array_equal(ids[1], ids[2])


def test_labels_stay_with_their_images():
  images, labels = make_data()
  for b in pipeline.train_batches(images, labels, global_batch=8, num_devices=2, seed=3,
                                        epoch=1):
    idx = b['image'][..., 0, 0, 0].ravel()
    np.testing.assert_array_equal(b['label'].ravel(), labels[idx])


def test_augmented_epoch_is_deterministic_under_parallel_map():
  config = tiny_config(augment__preset='flip_bright')
  augmenter = presets.host_augmenter(config.augment, 16)
  runs = [collect(global_batch=10, num_devices=2, seed=5, epoch=3, augmenter=augmenter)
          for _ in range(2)]
  for a, b in zip(*runs):
    np.testing.assert_array_equal(a['image'], b['image'])
  plain = collect(global_batch=10, num_devices=2, seed=5, epoch=3)  # same order, no augmentation
  changed = np.mean([not np.array_equal(x, y) for a, b in zip(runs[0], plain)
                     for x, y in zip(a['image'].reshape(-1, 16, 16, 3),
                                     b['image'].reshape(-1, 16, 16, 3))])
  assert changed > 0.5, 'flip_bright should change most images'
  for a, b in zip(runs[0], plain):
    np.testing.assert_array_equal(a['label'], b['label'])
  other = collect(global_batch=10, num_devices=2, seed=6, epoch=3, augmenter=augmenter)
  assert not np.array_equal(other[0]['image'], runs[0][0]['image'])


def test_simulated_processes_read_every_training_example_once():
  images, labels = make_data(n=64)
  seen = []
  for p in range(4):
    for b in pipeline.train_batches(images, labels, global_batch=16, num_devices=2, seed=1,
                                          epoch=1, process_index=p, process_count=4):
      assert b['image'].shape == (2, 2, 16, 16, 3)  # 16 global = 4 processes x 2 devices x 2
      seen.extend(b['image'][..., 0, 0, 0].ravel().tolist())
  assert sorted(seen) == list(range(64))


def test_indivisible_batch_is_a_clear_error():
  images, labels = make_data()
  with pytest.raises(ValueError, match='batch_size=10 must divide evenly'):
    next(pipeline.train_batches(images, labels, global_batch=10, num_devices=4, seed=0,
                                      epoch=1))


def test_repeats_make_an_epoch_of_several_differently_augmented_copies():
  images, labels = make_data()
  plain = list(pipeline.train_batches(images, labels, global_batch=10, num_devices=1, seed=0,
                                      epoch=1, repeats=3))
  ids = np.concatenate([b['image'][..., 0, 0, 0].ravel() for b in plain])
  assert len(plain) == 3 * 70 // 10 and np.bincount(ids, minlength=70).tolist() == [3] * 70
  for b in plain:  # labels still travel with their images
    np.testing.assert_array_equal(b['label'].ravel(), labels[b['image'][..., 0, 0, 0].ravel()])
  config = tiny_config(augment__preset='crop')
  augmenter = presets.host_augmenter(config.augment, 16)
  augmented = list(pipeline.train_batches(images, labels, global_batch=10, num_devices=1, seed=0,
                                          epoch=1, repeats=3, augmenter=augmenter))
  copies = {}
  for b, p in zip(augmented, plain):
    for image, idx in zip(b['image'].reshape(-1, 16, 16, 3), p['image'][..., 0, 0, 0].ravel()):
      copies.setdefault(int(idx), []).append(image)
  distinct = [len({c.tobytes() for c in copies[i]}) for i in range(70)]
  assert np.mean(distinct) > 2.5  # the copies of a photo are augmented differently
