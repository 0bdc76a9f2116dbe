"""Which examples go into which batch: epoch orders, per-process shares, padded eval batches.

Pure numpy, shared by every input path. Batches are dicts of arrays shaped
[local_devices, per_device_batch, ...] for the pmap steps. An epoch's order is a seeded permutation
shared by all processes (with data.repeats R, of R copies of every example), cut into global
batches; each process takes its own slice of every global batch, so a global batch holds the same
examples, on the same global devices, whatever the number of processes (two processes with two devices each train like one with four). Each example's
augmentation seed is derived from (seed, epoch, index), so an epoch is the same whatever the thread
scheduling and whether the run was resumed.

Evaluation batches carry a `mask`: the last partial batch is padded and masked, so every validation
example counts exactly once.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np


def epoch_seed(seed: int, epoch: int) -> int:
  return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def example_seed(seed: int, epoch: int, index: int) -> int:
  return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


def process_shard(indices: np.ndarray, process_index: int, process_count: int,
                  global_batch: int) -> np.ndarray:
  """This process's slice of every full global batch of an (already shuffled) index list.

  Across processes every index appears at most once; the examples past the last full global batch
  are left out of the epoch (different ones each epoch, since the order is reshuffled).
  """
  steps = len(indices) // global_batch
  local = global_batch // process_count
  cut = np.asarray(indices[:steps * global_batch]).reshape(steps, process_count, local)
  return cut[:, process_index].reshape(-1)


def shuffled_indices(n: int, seed: int, epoch: int) -> np.ndarray:
  return np.random.default_rng(epoch_seed(seed, epoch)).permutation(n)


def steps_per_epoch(num_examples: int, global_batch: int) -> int:
  return num_examples // global_batch


def local_batch_sizes(global_batch: int, num_devices: int, process_count: int,
                      what: str = 'batch_size') -> tuple[int, int]:
  """(this process's batch, per-device batch) of a global batch, which must divide evenly."""
  if global_batch % (num_devices * process_count):
    raise ValueError(f'{what}={global_batch} must divide evenly over {process_count} '
                     f'process(es) x {num_devices} device(s)')
  local_batch = global_batch // process_count
  return local_batch, local_batch // num_devices


def balanced_indices(labels: np.ndarray, seed: int, epoch: int, total: int) -> np.ndarray:
  """data.class_balance=sampler: `total` draws, with replacement, in which every class is equally
  likely (each example with probability 1 / (classes * its class's size)). An example drawn for the
  k-th time this epoch comes back as index + k * N, so that `index % N` is the example and each
  copy gets its own augmentation seed, as with data.repeats."""
  labels = np.asarray(labels)
  n = len(labels)
  counts = np.bincount(labels)
  p = 1.0 / counts[labels]
  rng = np.random.default_rng(np.random.SeedSequence([seed, epoch, 1]))
  draws = rng.choice(n, size=total, p=p / p.sum())
  order = np.argsort(draws, kind='stable')
  sorted_draws = draws[order]
  starts = np.r_[0, np.flatnonzero(np.diff(sorted_draws)) + 1]
  occurrence = np.arange(total) - np.repeat(starts, np.diff(np.r_[starts, total]))
  copies = np.empty(total, np.int64)
  copies[order] = occurrence
  return draws + copies * n


def epoch_order(num_examples: int, seed: int, epoch: int, global_batch: int,
                process_index: int = 0, process_count: int = 1, repeats: int = 1,
                balanced_labels: np.ndarray | None = None) -> np.ndarray:
  """The indices this process trains on in `epoch`, in order (full batches only).

  With `repeats` R > 1 an epoch is R passes over the examples, shuffled together (as the
  reference's R augmented copies of every photo were): the indices run over 0 .. R * N - 1, each
  example appearing as i, N + i, 2N + i, ...; `index % num_examples` is the example, and the
  index itself seeds its augmentation, so each copy is augmented differently.
  With `balanced_labels` (data.class_balance=sampler) the epoch is as many class-balanced draws
  (balanced_indices) instead.
  """
  total = num_examples * repeats
  indices = (shuffled_indices(total, seed, epoch) if balanced_labels is None else
             balanced_indices(balanced_labels, seed, epoch, total))
  return process_shard(indices, process_index, process_count, global_batch)


def eval_batches(images: np.ndarray, labels: np.ndarray, *, global_batch: int, num_devices: int,
                 process_index: int = 0, process_count: int = 1) -> Iterator[dict]:
  """Every example of this process's share exactly once, in order, padded and masked.

  All processes yield the same number of batches (pmap collectives need that), padding as needed.
  """
  local_batch, per_device = local_batch_sizes(global_batch, num_devices, process_count,
                                              'eval_batch_size')
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


def device_orders(order: np.ndarray, num_steps: int, num_devices: int,
                  per_device: int) -> np.ndarray:
  """An epoch's order cut for arrays resident on the devices: row d holds, step after step, the
  per-device examples that the host path's batch of that step puts on device d.

  `order` is this process's share (epoch_order); the result is [num_devices, num_steps *
  per_device] int32 (examples past the last full batch are left out, as the host path does).
  """
  cut = np.asarray(order[:num_steps * num_devices * per_device], np.int32)
  return cut.reshape(num_steps, num_devices, per_device).transpose(1, 0, 2).reshape(
      num_devices, num_steps * per_device)


def stacked_eval_arrays(images: np.ndarray, labels: np.ndarray, **eval_batch_kwargs
                        ) -> tuple[dict, int]:
  """All of eval_batches' (padded, masked) batches at once, one row per device:
  ({'image', 'label', 'mask'} shaped [devices, num_batches * per_device, ...], num_batches)."""
  batches = list(eval_batches(images, labels, **eval_batch_kwargs))
  out = {}
  for key in ('image', 'label', 'mask'):
    stacked = np.stack([b[key] for b in batches], axis=1)  # [devices, batches, per_device, ...]
    out[key] = stacked.reshape((stacked.shape[0], -1) + stacked.shape[3:])
  return out, len(batches)


def padded_chunks(array: np.ndarray, size: int) -> Iterator[tuple[np.ndarray, int]]:
  """`array` cut into chunks of `size` rows, the last one padded with zeros to `size` (so that a
  jitted function sees one shape): (chunk, how many of its rows are real)."""
  for start in range(0, len(array), size):
    chunk = array[start:start + size]
    n = len(chunk)
    if n < size:
      chunk = np.concatenate([chunk, np.zeros((size - n,) + chunk.shape[1:], chunk.dtype)])
    yield chunk, n
