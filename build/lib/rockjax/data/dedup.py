"""Duplicate photos: exact copies (content hash) and near-duplicates (perceptual hash), as groups.

Web-scraped collections hold the same photo several times: byte-identical copies, re-encodes and
resized copies, sometimes filed under different classes. A split that puts one copy in training and
another in validation measures memory, not generalisation. `duplicate_groups` returns one group id
per image (union-find over "same bytes" and "perceptual hashes within `threshold` bits"); splits and
folds then keep each group on one side.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from rockjax import fileio

HASH_SIZE = 8  # 8x8 difference hash: 64 bits
MIN_INDEX_BITS = 8  # narrower ranges make buckets too full for the index to pay
SWEEP_BUCKET = 32  # index buckets up to this size are searched together, larger ones one by one


def content_hash(path: str) -> str:
  return fileio.sha256(path)


def difference_hash(image: np.ndarray) -> np.ndarray:
  """64-bit dHash of an HWC uint8 image: signs of horizontal gradients of a 9x8 grey thumbnail."""
  grey = Image.fromarray(np.asarray(image, np.uint8)).convert('L')
  small = np.asarray(grey.resize((HASH_SIZE + 1, HASH_SIZE), Image.Resampling.BOX), np.int16)
  return (small[:, 1:] > small[:, :-1]).ravel()


def _find(parent: np.ndarray, i: int) -> int:
  while parent[i] != i:
    parent[i] = parent[parent[i]]
    i = parent[i]
  return i


def _union(parent: np.ndarray, a: int, b: int) -> None:
  ra, rb = _find(parent, a), _find(parent, b)
  if ra != rb:
    parent[max(ra, rb)] = min(ra, rb)


def packed_hashes(images) -> np.ndarray:
  """One uint64 word per image: its difference hash, first bit most significant."""
  bits = np.stack([difference_hash(im) for im in images]).astype(np.uint8)
  return np.packbits(bits, axis=1).view('>u8').ravel().astype(np.uint64)


def _pairs_within(packed: np.ndarray, members: np.ndarray, threshold: int, chunk: int):
  """(a, b) arrays of the pairs of `members` (ascending indices into `packed`) whose hashes
  differ in at most `threshold` bits, each pair once with a < b; `chunk` rows at a time."""
  found_a, found_b = [], []
  words = packed[members]
  for start in range(0, len(members) - 1, chunk):  # rows against the members after them
    block = words[start:start + chunk]
    dist = np.bitwise_count(block[:, None] ^ words[None, start:])
    rows, cols = np.nonzero(dist <= threshold)
    keep = cols > rows
    found_a.append(members[rows[keep] + start])
    found_b.append(members[cols[keep] + start])
  if not found_a:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)
  return np.concatenate(found_a), np.concatenate(found_b)


def _bit_ranges(parts: int) -> list[tuple[int, int]]:
  """`parts` disjoint (shift, width) ranges covering the 64 bits, widths as equal as possible."""
  widths = [64 // parts + (i < 64 % parts) for i in range(parts)]
  shifts = np.cumsum([0] + widths[:-1])
  return [(int(s), w) for s, w in zip(shifts, widths)]


def range_keys(packed: np.ndarray, parts: int):
  """For each of `parts` bit ranges (_bit_ranges), every hash's value in that range."""
  for shift, width in _bit_ranges(parts):
    yield (packed >> np.uint64(64 - shift - width)) & np.uint64((1 << width) - 1)


def near_duplicate_pairs(packed: np.ndarray, threshold: int, chunk: int = 256,
                         method: str = 'auto') -> tuple[np.ndarray, np.ndarray]:
  """(a, b), a < b: every pair of hashes within `threshold` bits, each pair once.

  `method`: 'all_pairs' compares every pair (quadratic); 'index' is multi-index hashing: split
  the 64 bits into threshold + 1 disjoint ranges, and two hashes within `threshold` bits agree
  exactly on at least one range (pigeonhole), so only images sharing a range's value are compared;
  'auto' takes the index when its ranges are at least MIN_INDEX_BITS wide and there are more than
  `chunk` images. Both give the same pairs.
  """
  n = len(packed)
  parts = threshold + 1
  if method == 'auto':
    method = 'index' if 64 // parts >= MIN_INDEX_BITS and n > chunk else 'all_pairs'
  if method == 'all_pairs' or parts > 64:  # more ranges than bits: nothing to index on
    return _pairs_within(packed, np.arange(n), threshold, chunk)
  if method != 'index':
    raise ValueError(f"method must be 'auto', 'index' or 'all_pairs', not {method!r}")
  found_a, found_b = [], []
  for key in range_keys(packed, parts):
    order = np.argsort(key, kind='stable')  # a bucket's members stay in ascending order
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    sizes = np.diff(np.r_[starts, n])
    small = np.repeat(sizes <= SWEEP_BUCKET, sizes)  # per sorted position
    # Buckets of up to SWEEP_BUCKET images, all at once: position i against position i + d.
    for d in range(1, min(SWEEP_BUCKET, n)):
      i = np.flatnonzero((sorted_key[d:] == sorted_key[:-d]) & small[d:])
      if not len(i):
        break  # no bucket holds d + 1 images
      a, b = order[i], order[i + d]
      close = np.bitwise_count(packed[a] ^ packed[b]) <= threshold
      found_a.append(a[close])
      found_b.append(b[close])
    for begin, size in zip(starts[sizes > SWEEP_BUCKET], sizes[sizes > SWEEP_BUCKET]):
      a, b = _pairs_within(packed, order[begin:begin + size], threshold, chunk)
      found_a.append(a)
      found_b.append(b)
  if not found_a:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)
  pairs = np.unique(np.stack([np.concatenate(found_a), np.concatenate(found_b)], 1), axis=0)
  return pairs[:, 0], pairs[:, 1]  # a pair found in several ranges, once


def duplicate_groups(images: np.ndarray, paths: list[str] | None = None, threshold: int = 4,
                     chunk: int = 256, hashes: list[str] | None = None,
                     method: str = 'auto') -> np.ndarray:
  """A group id per image; images in one group are copies or near-copies of each other.

  `paths` (absolute or openable) enables exact-duplicate detection by file content, or `hashes`
  (their content_hash values, e.g. saved with a decoded set); `threshold` is the largest Hamming
  distance (of 64 bits) between difference hashes that still counts as a near-duplicate
  (negative: no near-duplicate search); `method` chooses the search (near_duplicate_pairs).
  """
  n = len(images) if images is not None else len(hashes)  # images None: exact copies (hashes)
  parent = np.arange(n)
  if hashes is None and paths is not None:
    hashes = [content_hash(path) for path in paths]
  if hashes is not None:
    first = {}
    for i, h in enumerate(hashes):
      if h in first:
        _union(parent, first[h], i)
      else:
        first[h] = i
  if threshold >= 0 and n > 1 and images is not None:
    for a, b in zip(*near_duplicate_pairs(packed_hashes(images), threshold, chunk, method)):
      _union(parent, int(a), int(b))
  roots = np.array([_find(parent, i) for i in range(n)])
  _, group = np.unique(roots, return_inverse=True)
  return group.astype(np.int64)


def group_summary(groups: np.ndarray, labels: np.ndarray, paths: list[str], class_names,
                  max_listed: int = 50) -> dict:
  """How many duplicate groups, how many extra copies, which groups span classes."""
  members: dict[int, list[int]] = {}
  for i, g in enumerate(groups):
    members.setdefault(int(g), []).append(i)
  multi = [m for m in members.values() if len(m) > 1]
  cross = [m for m in multi if len({int(labels[i]) for i in m}) > 1]
  return dict(
      num_images=int(len(groups)), num_groups=len(members), duplicate_groups=len(multi),
      extra_copies=int(sum(len(m) - 1 for m in multi)), cross_class_groups=len(cross),
      cross_class_examples=[[f'{paths[i]} ({class_names[labels[i]]})' for i in m]
                            for m in cross[:max_listed]])
