"""Batches for the pmap steps: tf.data for training (shuffle, Albumentations, prefetch), numpy for eval.

Training batches are dicts of numpy arrays shaped [local_devices, per_device_batch, ...]:
`image` uint8 HWC, `label` int32. The dataset iterates over example *indices* and gathers images from
the in-memory uint8 array inside `tf.numpy_function`, so no image array is ever embedded in a TF graph.
Each example's augmentation is seeded from (seed, epoch, index): an epoch's batches are identical
whatever the thread scheduling and whether the run was resumed.

Evaluation batches carry a `mask`: the last partial batch is padded and masked, so every validation
example counts exactly once.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import tensorflow as tf

from rockjax.augment import HostAugmenter

# The input pipeline runs on the host CPU: keep TensorFlow off any accelerator JAX is using.
tf.config.set_visible_devices([], 'GPU')


def epoch_seed(seed: int, epoch: int) -> int:
  return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def example_seed(seed: int, epoch: int, index: int) -> int:
  return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


def process_shard(indices: np.ndarray, process_index: int, process_count: int) -> np.ndarray:
  """This process's share of an (already shuffled) index list; all shares have equal length.

  Across processes every index appears at most once; at most `process_count - 1` indices (the
  remainder) are left out of an epoch, different ones each epoch since the order is reshuffled.
  """
  per_process = len(indices) // process_count
  return indices[process_index * per_process:(process_index + 1) * per_process]


def shuffled_indices(n: int, seed: int, epoch: int) -> np.ndarray:
  return np.random.default_rng(epoch_seed(seed, epoch)).permutation(n)


def steps_per_epoch(num_examples: int, global_batch: int) -> int:
  return num_examples // global_batch


def train_batches(images: np.ndarray, labels: np.ndarray, *, global_batch: int, num_devices: int,
                  seed: int, epoch: int, augmenter: HostAugmenter | None = None,
                  deterministic: bool = True, process_index: int = 0,
                  process_count: int = 1) -> Iterator[dict]:
  """One epoch of shuffled, augmented training batches for this process's local devices.

  The epoch's order is a seeded permutation shared by all processes; each process takes its own
  contiguous share.
  """
  if global_batch % (num_devices * process_count):
    raise ValueError(f'batch_size={global_batch} must divide evenly over {process_count} '
                     f'process(es) x {num_devices} device(s)')
  local_batch = global_batch // process_count
  per_device = local_batch // num_devices
  order = process_shard(shuffled_indices(len(labels), seed, epoch), process_index, process_count)
  height, width = images.shape[1:3]

  ds = tf.data.Dataset.from_tensor_slices(order.astype(np.int64))
  if augmenter is None:
    ds = ds.batch(local_batch, drop_remainder=True)
    gather = lambda idx: (images[idx], labels[idx])
    ds = ds.map(lambda idx: tf.numpy_function(gather, [idx], (tf.uint8, tf.int32)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
  else:
    def augment_one(idx):
      i = int(idx)
      return augmenter(images[i], example_seed(seed, epoch, i)), labels[i]

    def map_one(idx):
      image, label = tf.numpy_function(augment_one, [idx], (tf.uint8, tf.int32))
      return tf.ensure_shape(image, (height, width, 3)), tf.ensure_shape(label, ())

    ds = ds.map(map_one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.batch(local_batch, drop_remainder=True)

  def to_devices(image, label):
    return dict(image=tf.reshape(image, (num_devices, per_device, height, width, 3)),
                label=tf.reshape(label, (num_devices, per_device)))

  ds = ds.map(to_devices).prefetch(tf.data.AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = deterministic
  ds = ds.with_options(options)
  return ds.as_numpy_iterator()


def eval_batches(images: np.ndarray, labels: np.ndarray, *, global_batch: int, num_devices: int,
                 process_index: int = 0, process_count: int = 1) -> Iterator[dict]:
  """Every example of this process's share exactly once, in order, padded and masked.

  All processes yield the same number of batches (pmap collectives need that), padding as needed.
  """
  if global_batch % (num_devices * process_count):
    raise ValueError(f'eval_batch_size={global_batch} must divide evenly over {process_count} '
                     f'process(es) x {num_devices} device(s)')
  local_batch = global_batch // process_count
  per_device = local_batch // num_devices
  share = np.arange(process_index, len(labels), process_count)
  longest_share = math.ceil(len(labels) / process_count)
  num_batches = max(1, math.ceil(longest_share / local_batch))
  for b in range(num_batches):
    idx = share[b * local_batch:(b + 1) * local_batch]
    pad = local_batch - len(idx)
    image = images[idx]
    label = labels[idx].astype(np.int32)
    mask = np.ones(len(idx), np.float32)
    if pad:
      image = np.concatenate([image, np.zeros((pad,) + images.shape[1:], images.dtype)])
      label = np.concatenate([label, np.zeros(pad, np.int32)])
      mask = np.concatenate([mask, np.zeros(pad, np.float32)])
    yield dict(image=image.reshape((num_devices, per_device) + images.shape[1:]),
               label=label.reshape(num_devices, per_device),
               mask=mask.reshape(num_devices, per_device),
               index=np.concatenate([idx, np.full(pad, -1)]).reshape(num_devices, per_device))
