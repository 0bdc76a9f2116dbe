"""`data.in_memory=false` (or `auto` over `data.memory_budget_mb`): a TFDS set streamed, not decoded
into memory.

A streamed split is known by its labels and its examples' positions in a TFDS split (`StreamedSet`;
`index_split` reads them without decoding a single image), so splitting, k-fold, the test carve,
`split.json`, `data.split_from` and `data.exclude` work on it as on an in-memory set. Duplicates are
grouped by the encoded bytes' SHA-256 (exact copies; near-copies need decoded images).

Every epoch `train_batches` builds a tf.data pipeline over the stored records: keep the split's
positions, take this process's share (`shard`, the equivalent of `tfds.split_for_jax_process` on
a split that is itself a subset), repeat, shuffle with a buffer of `data.shuffle_buffer` examples
seeded by (seed, epoch), decode with the dataset's own image feature, give the image a photo
folder's preprocessing (tfds_source.to_image), augment with the host preset (the per-example seed
from (seed, epoch, position in the epoch)), batch and prefetch. The order depends only on (seed,
epoch), so a run resumed at an epoch boundary trains on the same batches as one never stopped.
`eval_batches` streams a split once, in order, each process its share, padded and masked as
rockjax/data/batching.py's eval batches are, so every example counts exactly once.

TensorFlow and TensorFlow Datasets are imported by this module; only the `data.tfds` path loads it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any, Iterator

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from rockjax.data import batching, folder, pipeline, tfds_source
from rockjax.errors import DataError


def decoded_megabytes(num_examples: int, image_size: int) -> float:
  """What `num_examples` decoded uint8 RGB images of the run's size take in memory."""
  return num_examples * image_size * image_size * 3 / 2**20


def should_stream(data_config, num_examples: int) -> bool:
  if data_config.in_memory == 'auto':
    return decoded_megabytes(num_examples, data_config.image_size) > data_config.memory_budget_mb
  return data_config.in_memory == 'false'


@dataclasses.dataclass
class StreamedSet:
  """Examples of one TFDS split, by position; their images are read only while streaming."""
  builder: Any  # the tfds builder
  split: str  # TFDS split syntax; `positions` index into it, in its stored order
  image_key: str
  label_key: str
  options: folder.ReadOptions
  positions: np.ndarray  # [N] int64
  labels: np.ndarray  # [N] int32
  paths: list[str]
  class_names: list[str]
  root: str
  report: dict
  content_hashes: list[str] | None = None
  streamed = True

  def __len__(self) -> int:
    return len(self.paths)

  @property
  def images(self):
    raise DataError(f'{self.root} ({self.split}) is streamed (data.in_memory): its images are '
                    'not in memory; use in_memory() for a set small enough to hold')

  def subset(self, indices) -> 'StreamedSet':
    indices = np.asarray(indices, dtype=np.int64)
    hashes = self.content_hashes
    return dataclasses.replace(self, positions=self.positions[indices],
                               labels=self.labels[indices],
                               paths=[self.paths[i] for i in indices],
                               content_hashes=None if hashes is None else [hashes[i]
                                                                           for i in indices])

  def in_memory(self) -> folder.ImageSet:
    """The same examples decoded into an ImageSet (for evaluation reports and plots)."""
    images = np.empty((len(self),) + (self.options.image_size,) * 2 + (3,), np.uint8)
    for rows, batch, _ in _decoded(self, _records(self)):
      images[rows] = batch
    return folder.ImageSet(images=images, labels=self.labels, paths=self.paths,
                           class_names=self.class_names, root=self.root, report=self.report,
                           content_hashes=self.content_hashes)


def index_split(b, split: str, data_config, options: folder.ReadOptions) -> StreamedSet:
  """Labels, names and content hashes of a TFDS split, read without decoding any image."""
  image_key, label_key = tfds_source.feature_keys(b.info.features, data_config.tfds_image_key,
                                                  data_config.tfds_label_key)
  ds = tfds_source.open_split(b, split, data_config,
                              decoders={image_key: tfds.decode.SkipDecoding()})
  labels, hashes = [], []
  pairs = ds.map(lambda ex: (ex[image_key], ex[label_key])).batch(4096)  # batched: fast to read
  for encoded, label in pairs.as_numpy_iterator():
    hashes += [hashlib.sha256(e).hexdigest() for e in encoded]
    labels += [int(x) for x in label]
  labels = np.asarray(labels, np.int32)
  report = tfds_source.split_report(b, split, data_config, labels, (image_key, label_key),
                                    streamed=True)
  logging.info('tfds %s (%s), split %s: %d examples indexed for streaming (%.0f MiB decoded).',
               data_config.tfds, b.info.version, split, len(labels),
               decoded_megabytes(len(labels), options.image_size))
  return StreamedSet(builder=b, split=split, image_key=image_key, label_key=label_key,
                     options=options, positions=np.arange(len(labels), dtype=np.int64),
                     labels=labels, paths=tfds_source.example_paths(split, len(labels)),
                     class_names=list(b.info.features[label_key].names), root=report['root'],
                     report=report,
                     content_hashes=hashes)


def split_reader(b, data_config, options: folder.ReadOptions):
  """split -> its examples: decoded into memory (an ImageSet), or indexed for streaming (a
  streaming.StreamedSet) when data.in_memory=false, or auto and the decoded training split would
  exceed data.memory_budget_mb."""
  in_memory = lambda split: tfds_source.read_split(b, split, data_config, options)  # noqa: E731
  if data_config.in_memory == 'true':
    return in_memory
  indexed = {}  # a split indexed to size it, handed out once instead of indexed again
  try:
    num_train = b.info.splits[data_config.train_split].num_examples
  except Exception:  # a split expression TFDS cannot size without reading: index it
    indexed[data_config.train_split] = index_split(b, data_config.train_split, data_config,
                                                   options)
    num_train = len(indexed[data_config.train_split])
  if not should_stream(data_config, num_train):
    return in_memory
  logging.info('Streaming %s (data.in_memory=%s): %d training examples, %.0f MiB decoded at %d px '
               '(budget data.memory_budget_mb=%d).', data_config.tfds, data_config.in_memory,
               num_train, decoded_megabytes(num_train, data_config.image_size),
               data_config.image_size, data_config.memory_budget_mb)
  return lambda split: (indexed.pop(split) if split in indexed else
                        index_split(b, split, data_config, options))


def _records(s: StreamedSet, process_index: int = 0, process_count: int = 1) -> tf.data.Dataset:
  """(row in the set, encoded image, label) of the set's examples, in the split's stored order;
  this process's share (every process_count-th, from process_index)."""
  ds = s.builder.as_dataset(split=s.split, shuffle_files=False,
                            decoders={s.image_key: tfds.decode.SkipDecoding()})
  row_of = np.full(int(s.positions.max()) + 1, -1, np.int64)
  row_of[s.positions] = np.arange(len(s.positions))
  rows = tf.constant(row_of)
  ds = ds.take(len(row_of)).enumerate().map(lambda i, ex: (
      tf.gather(rows, i), ex[s.image_key], tf.cast(ex[s.label_key], tf.int32)))
  ds = ds.filter(lambda row, image, label: row >= 0)
  return ds.shard(process_count, process_index) if process_count > 1 else ds


def _decoded(s: StreamedSet, records: tf.data.Dataset, batch: int = 256) -> Iterator[tuple]:
  """Batches of (rows, preprocessed uint8 images, labels), in the records' order."""
  feature = s.builder.info.features[s.image_key]
  size = s.options.image_size

  def decode(row, encoded, label):
    image = tf.numpy_function(lambda x: tfds_source.to_image(x, s.options),
                              [feature.decode_example(encoded)], tf.uint8)
    return row, tf.ensure_shape(image, (size, size, 3)), label

  records = records.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return records.batch(batch).prefetch(2).as_numpy_iterator()


def steps_per_epoch(s: StreamedSet, global_batch: int, repeats: int = 1) -> int:
  return batching.steps_per_epoch(len(s) * repeats, global_batch)


def train_batches(s: StreamedSet, *, global_batch: int, num_devices: int, seed: int, epoch: int,
                  augmenter=None, shuffle_buffer: int = 10_000, deterministic: bool = True,
                  process_index: int = 0, process_count: int = 1, threads: int = 0,
                  repeats: int = 1) -> Iterator[dict]:
  """One epoch (steps_per_epoch batches, about `repeats` passes) of shuffled, decoded, augmented
  training batches for this process's devices, shaped [devices, per_device, ...]."""
  local_batch, per_device = batching.local_batch_sizes(global_batch, num_devices, process_count)
  num_steps = steps_per_epoch(s, global_batch, repeats)
  size = s.options.image_size
  feature = s.builder.info.features[s.image_key]
  ds = _records(s, process_index, process_count).map(lambda row, image, label: (image, label))
  # `repeats` passes shuffled together; the outer repeat() only tops up a process whose share
  # is a few examples short of the epoch's steps (every process must run the same number).
  ds = ds.repeat(repeats).shuffle(shuffle_buffer, seed=batching.epoch_seed(seed, epoch),
                                  reshuffle_each_iteration=False)
  ds = ds.repeat().take(num_steps * local_batch).enumerate()

  def prepare(image, index):
    image = tfds_source.to_image(image, s.options)
    if augmenter is not None:  # seeded by the example's place in this process's epoch
      image = augmenter(image, batching.example_seed(seed, epoch, process_index * 2**40 + index))
    return image

  def decode(index, example):
    encoded, label = example
    image = tf.numpy_function(prepare, [feature.decode_example(encoded), index], tf.uint8)
    return tf.ensure_shape(image, (size, size, 3)), label

  ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
  return pipeline.device_batches(ds.batch(local_batch, drop_remainder=True),
                                 num_devices=num_devices, per_device=per_device, height=size,
                                 width=size, deterministic=deterministic, threads=threads)


def eval_batches(s: StreamedSet, *, global_batch: int, num_devices: int, process_index: int = 0,
                 process_count: int = 1) -> Iterator[dict]:
  """Every example of this process's share once, in order, padded and masked; all processes
  yield the same number of batches (as batching.eval_batches)."""
  local_batch, per_device = batching.local_batch_sizes(global_batch, num_devices, process_count,
                                                       'eval_batch_size')
  num_batches = max(1, math.ceil(math.ceil(len(s) / process_count) / local_batch))
  size = s.options.image_size
  batches = _decoded(s, _records(s, process_index, process_count), local_batch)
  empty = (np.zeros(0, np.int64), np.zeros((0, size, size, 3), np.uint8), np.zeros(0, np.int32))
  for _ in range(num_batches):
    rows, image, label = next(batches, empty)
    pad = local_batch - len(label)
    mask = np.concatenate([np.ones(len(label), np.float32), np.zeros(pad, np.float32)])
    image = np.concatenate([image, np.zeros((pad, size, size, 3), np.uint8)])
    label = np.concatenate([label.astype(np.int32), np.zeros(pad, np.int32)])
    index = np.concatenate([rows, np.full(pad, -1)])
    yield dict(image=image.reshape(num_devices, per_device, size, size, 3),
               label=label.reshape(num_devices, per_device),
               mask=mask.reshape(num_devices, per_device),
               index=index.reshape(num_devices, per_device))
