"""Duplicate photos: exact copies (content hash) and near-duplicates (perceptual hash), as groups.

Web-scraped collections hold the same photo several times: byte-identical copies, re-encodes and
resized copies, sometimes filed under different classes. A split that puts one copy in training and
another in validation measures memory, not generalisation. `duplicate_groups` returns one group id
per image (union-find over "same bytes" and "perceptual hashes within `threshold` bits"); splits and
folds then keep each group on one side.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

HASH_SIZE = 8  # 8x8 difference hash: 64 bits


def content_hash(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


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


def duplicate_groups(images: np.ndarray, paths: list[str] | None = None, threshold: int = 4,
                     chunk: int = 256, hashes: list[str] | None = None) -> np.ndarray:
  """A group id per image; images in one group are copies or near-copies of each other.

  `paths` (absolute or openable) enables exact-duplicate detection by file content, or `hashes`
  (their content_hash values, e.g. saved with a decoded set); `threshold` is the largest Hamming
  distance (of 64 bits) between difference hashes that still counts as a near-duplicate
  (negative: no near-duplicate search).
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
    bits = np.stack([difference_hash(im) for im in images]).astype(np.uint8)
    packed = np.packbits(bits, axis=1).view('>u8').ravel()  # one 64-bit word per image
    for start in range(0, n - 1, chunk):  # each pair once: row r against the images after it
      block = packed[start:start + chunk]
      dist = np.bitwise_count(block[:, None] ^ packed[None, start:])  # Hamming distances
      rows, cols = np.nonzero(dist <= threshold)
      for r, c in zip(rows + start, cols + start):
        if c > r:
          _union(parent, int(r), int(c))
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
