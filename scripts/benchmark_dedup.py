"""The near-duplicate search, all pairs against the multi-index, side by side on the same hashes.

    python scripts/benchmark_dedup.py --photos=../shared/data/cifar10/train \
        --synthetic=50000,200000,1000000 --out=results/benchmark_dedup.json

For each set of 64-bit difference hashes (`--photos`: every image of a class-folder tree, read as
training reads it at `--image_size` px; `--synthetic`: N random words, 2% of them followed by a
near-copy at 0..threshold flipped bits), both methods of `dedup.near_duplicate_pairs` run in this
process, alternating `--rounds` times; the script records the median seconds of each, checks that
both found the same pairs, and lists the index's fullest bucket (what bounds it: a range value that
many photos share, e.g. flat backgrounds, is compared all against all). The all-pairs search is
skipped above `--max_all_pairs` images (it is quadratic: its time there is not measured).
"""

from __future__ import annotations

import json
import platform
import statistics
import time

import _bootstrap  # noqa: F401  (the repository root on sys.path)
import numpy as np
from absl import app, flags, logging

from rockjax import bench
from rockjax.bench import studied

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string('photos', '', 'A class-folder tree whose images are hashed (optional).')
  flags.DEFINE_integer('image_size', 32, 'The size --photos are read at before hashing.')
  flags.DEFINE_list('synthetic', ['50000'], 'Sizes of random hash sets with planted near-copies.')
  flags.DEFINE_integer('threshold', 4, 'Hamming distance that counts as a near-duplicate.')
  flags.DEFINE_integer('chunk', 256, 'Rows per distance block (dedup.duplicate_groups default).')
  flags.DEFINE_integer('rounds', 3, 'Alternating rounds; medians are reported.')
  flags.DEFINE_integer('max_all_pairs', 200_000, 'Larger sets time the index alone.')
  flags.DEFINE_integer('seed', 0, 'Seed of the synthetic sets.')
  flags.DEFINE_string('out', '', 'JSON file for the results.')


def synthetic_hashes(n: int, threshold: int, seed: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  words = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2)
  words |= rng.integers(0, 2, n, dtype=np.uint64)
  planted = rng.choice(n - 1, n // 50, replace=False)
  for i in planted:  # the next word becomes a near-copy of word i
    mask = 0
    for bit in rng.choice(64, rng.integers(0, threshold + 1), replace=False):
      mask |= 1 << int(bit)
    words[i + 1] = np.uint64(int(words[i]) ^ mask)
  return words


def measure(name: str, packed: np.ndarray) -> dict:
  n = len(packed)
  methods = ['index'] + (['all_pairs'] if n <= FLAGS.max_all_pairs else [])
  seconds = {m: [] for m in methods}
  pairs = {}
  for _ in range(FLAGS.rounds):
    for method in methods:
      start = time.perf_counter()
      a, b = studied.near_duplicate_pairs(packed, FLAGS.threshold, FLAGS.chunk, method)
      seconds[method].append(time.perf_counter() - start)
      pairs[method] = set(zip(a.tolist(), b.tolist()))
  row = dict(set=name, images=n, pairs=len(pairs['index']),
             fullest_bucket=studied.fullest_bucket(packed, FLAGS.threshold),
             seconds={m: statistics.median(s) for m, s in seconds.items()},
             all_seconds=seconds)
  if 'all_pairs' in pairs:
    row['same_pairs'] = pairs['index'] == pairs['all_pairs']
    row['speedup'] = row['seconds']['all_pairs'] / row['seconds']['index']
    if not row['same_pairs']:
      raise SystemExit(f'{name}: the index and the all-pairs search found different pairs')
  logging.info('%s', {k: v for k, v in row.items() if k != 'all_seconds'})
  return row


def main(argv) -> None:
  del argv
  rows = []
  if FLAGS.photos:
    start = time.perf_counter()
    images = studied.read_images(FLAGS.photos, FLAGS.image_size)
    hashed = time.perf_counter()
    packed = studied.packed_hashes(images)
    logging.info('read %d photos in %.1f s, hashed in %.1f s', len(images), hashed - start,
                 time.perf_counter() - hashed)
    rows.append(measure(f'photos:{FLAGS.photos}', packed))
  for size in FLAGS.synthetic:
    rows.append(measure(f'synthetic:{size}', synthetic_hashes(int(size), FLAGS.threshold,
                                                              FLAGS.seed)))
  result = dict(date=time.strftime('%Y-%m-%d'), machine=platform.platform(),
                processor=platform.processor(), threshold=FLAGS.threshold, chunk=FLAGS.chunk,
                rounds=FLAGS.rounds, rows=rows)
  if FLAGS.out:
    bench.write_json(FLAGS.out, result)
  print(json.dumps(result, indent=2))


if __name__ == '__main__':
  define_flags()
  app.run(main)
