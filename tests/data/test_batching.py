"""Batching: epoch orders, per-process shares, and evaluation that sees every example once."""

import numpy as np
import pytest

from rockjax.data import batching


def make_data(n=70, size=16, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
  labels = (np.arange(n) % 4).astype(np.int32)
  return images, labels


def test_each_process_takes_its_slice_of_every_global_batch():
  order = batching.shuffled_indices(103, seed=0, epoch=4)
  shards = [batching.process_shard(order, p, 4, global_batch=8) for p in range(4)]
  assert {len(s) for s in shards} == {24}  # 12 full global batches of 8, 2 per process each
  for step in range(12):  # the processes' slices, side by side, are the single process's batch
    together = np.concatenate([s[2 * step:2 * step + 2] for s in shards])
    np.testing.assert_array_equal(together, order[8 * step:8 * step + 8])
  seen = np.concatenate(shards)
  assert len(set(seen.tolist())) == len(seen) == 96  # the rest of the epoch is skipped


@pytest.mark.parametrize('n,processes', [(70, 1), (64, 1), (5, 1), (71, 3)])
def test_eval_batches_cover_every_example_exactly_once(n, processes):
  images, labels = make_data(n=n)
  seen, counts = [], []
  for p in range(processes):
    batches = list(batching.eval_batches(images, labels, global_batch=24, num_devices=2,
                                               process_index=p, process_count=processes))
    counts.append(len(batches))
    for b in batches:
      assert b['image'].shape[:2] == (2, 24 // processes // 2)
      real = b['mask'].ravel() > 0
      np.testing.assert_array_equal(b['index'].ravel() >= 0, real)
      idx = b['index'].ravel()[real]
      np.testing.assert_array_equal(b['label'].ravel()[real], labels[idx])
      seen.extend(idx.tolist())
  assert sorted(seen) == list(range(n))
  assert len(set(counts)) == 1, 'every process must run the same number of eval steps'


def test_epoch_order_depends_only_on_seed_and_epoch():
  a = batching.epoch_order(50, seed=3, epoch=2, global_batch=10)
  np.testing.assert_array_equal(a, batching.epoch_order(50, seed=3, epoch=2, global_batch=10))
  assert sorted(a.tolist()) == list(range(50))
  assert not np.array_equal(a, batching.epoch_order(50, seed=3, epoch=3, global_batch=10))
  assert not np.array_equal(a, batching.epoch_order(50, seed=4, epoch=2, global_batch=10))


def test_local_batch_sizes_split_the_global_batch():
  assert batching.local_batch_sizes(64, num_devices=4, process_count=2) == (32, 8)
  with pytest.raises(ValueError, match='eval_batch_size=10 must divide evenly'):
    batching.local_batch_sizes(10, num_devices=4, process_count=1, what='eval_batch_size')


@pytest.mark.parametrize('process_index,process_count', [(0, 1), (1, 2)])
def test_device_orders_put_each_step_on_the_devices_the_host_batches_would(process_index,
                                                                           process_count):
  from rockjax.data import pipeline
  n, devices, per_device, seed, epoch = 70, 4, 2, 2, 3
  images, labels = make_data(n=n)
  images[:, 0, 0, 0] = np.arange(n)  # each image carries its index
  global_batch = devices * per_device * process_count
  order = batching.epoch_order(n, seed, epoch, global_batch, process_index, process_count)
  steps = batching.steps_per_epoch(n, global_batch)
  rows = batching.device_orders(order, steps, devices, per_device)
  assert rows.shape == (devices, steps * per_device) and rows.dtype == np.int32
  host = list(pipeline.train_batches(images, labels, global_batch=global_batch,
                                     num_devices=devices, seed=seed, epoch=epoch,
                                     process_index=process_index, process_count=process_count))
  assert len(host) == steps
  for s, batch in enumerate(host):
    for d in range(devices):
      np.testing.assert_array_equal(rows[d, s * per_device:(s + 1) * per_device],
                                    batch['image'][d, :, 0, 0, 0])


@pytest.mark.parametrize('processes', [1, 3])
def test_stacked_eval_arrays_are_the_eval_batches_side_by_side(processes):
  images, labels = make_data(n=71)
  for p in range(processes):
    kw = dict(global_batch=24, num_devices=2, process_index=p, process_count=processes)
    arrays, num_batches = batching.stacked_eval_arrays(images, labels, **kw)
    batches = list(batching.eval_batches(images, labels, **kw))
    assert num_batches == len(batches)
    per_device = batches[0]['label'].shape[1]
    for b, batch in enumerate(batches):
      for key in ('image', 'label', 'mask'):
        np.testing.assert_array_equal(
            arrays[key][:, b * per_device:(b + 1) * per_device], batch[key])


def test_balanced_epochs_draw_every_class_equally_often():
  labels = np.array([0] * 90 + [1] * 10)
  idx = batching.balanced_indices(labels, seed=0, epoch=3, total=2000)
  assert len(idx) == len(set(idx.tolist())) == 2000  # each copy has its own index (and seed)
  share = np.mean(labels[idx % 100] == 1)
  assert 0.45 < share < 0.55
  np.testing.assert_array_equal(idx, batching.balanced_indices(labels, 0, 3, 2000))
  assert not np.array_equal(idx, batching.balanced_indices(labels, 0, 4, 2000))
  order = batching.epoch_order(100, 0, 3, 10, balanced_labels=labels)
  assert len(order) == 100 and np.mean(labels[order % 100] == 1) > 0.3


def test_padded_chunks_cut_and_pad_the_last_one():
  array = np.arange(10 * 2).reshape(10, 2).astype(np.float32)
  chunks = list(batching.padded_chunks(array, 4))
  assert [n for _, n in chunks] == [4, 4, 2]
  assert all(c.shape == (4, 2) and c.dtype == np.float32 for c, _ in chunks)
  np.testing.assert_array_equal(np.concatenate([c[:n] for c, n in chunks]), array)
  np.testing.assert_array_equal(chunks[-1][0][2:], 0)
  assert list(batching.padded_chunks(array[:0], 4)) == []
