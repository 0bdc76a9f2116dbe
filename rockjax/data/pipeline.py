"""The host input path: tf.data training batches, augmented per example with Albumentations.

The dataset iterates over example *indices* (rockjax/data/batching.py decides which, in which order)
and gathers images from the in-memory uint8 array inside `tf.numpy_function`, so no image array is
ever embedded in a TF graph. Batches are dicts of numpy arrays shaped
[local_devices, per_device_batch, ...]: `image` uint8 HWC, `label` int32. This is the only module
of the training path that imports TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np
import tensorflow as tf

from rockjax.data import batching

if TYPE_CHECKING:
  from rockjax.augment.host import HostAugmenter

# The input pipeline runs on the host CPU: keep TensorFlow off any accelerator JAX is using.
tf.config.set_visible_devices([], 'GPU')


def train_batches(images: np.ndarray, labels: np.ndarray, *, global_batch: int, num_devices: int,
                  seed: int, epoch: int, augmenter: HostAugmenter | None = None,
                  deterministic: bool = True, process_index: int = 0,
                  process_count: int = 1, threads: int = 0, repeats: int = 1,
                  balanced: bool = False) -> Iterator[dict]:
  """One epoch (`repeats` passes) of shuffled, augmented training batches for this process's local
  devices; `threads` > 0 caps tf.data's thread pool (0: TensorFlow's default, one per core)."""
  local_batch, per_device = batching.local_batch_sizes(global_batch, num_devices, process_count)
  order = batching.epoch_order(len(labels), seed, epoch, global_batch, process_index,
                               process_count, repeats, labels if balanced else None)
  height, width = images.shape[1:3]
  n = len(labels)

  ds = tf.data.Dataset.from_tensor_slices(order.astype(np.int64))
  if augmenter is None:
    ds = ds.batch(local_batch, drop_remainder=True)
    gather = lambda idx: (images[idx % n], labels[idx % n])
    ds = ds.map(lambda idx: tf.numpy_function(gather, [idx], (tf.uint8, tf.int32)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
  else:
    def augment_one(idx):
      i = int(idx)  # the copy's index: seeds its augmentation
      return augmenter(images[i % n], batching.example_seed(seed, epoch, i)), labels[i % n]

    def map_one(idx):
      image, label = tf.numpy_function(augment_one, [idx], (tf.uint8, tf.int32))
      return tf.ensure_shape(image, (height, width, 3)), tf.ensure_shape(label, ())

    ds = ds.map(map_one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.batch(local_batch, drop_remainder=True)

  return device_batches(ds, num_devices=num_devices, per_device=per_device, height=height,
                        width=width, deterministic=deterministic, threads=threads)


def device_batches(ds: tf.data.Dataset, *, num_devices: int, per_device: int, height: int,
                   width: int, deterministic: bool, threads: int) -> Iterator[dict]:
  """Batches of (image, label) of this process's batch size as numpy dicts shaped
  [local_devices, per_device_batch, ...], prefetched; `threads` > 0 caps tf.data's thread pool."""
  def to_devices(image, label):
    return dict(image=tf.reshape(image, (num_devices, per_device, height, width, 3)),
                label=tf.reshape(label, (num_devices, per_device)))

  ds = ds.map(to_devices).prefetch(tf.data.AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = deterministic
  if threads:
    options.threading.private_threadpool_size = threads
  return ds.with_options(options).as_numpy_iterator()
