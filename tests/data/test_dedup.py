"""Duplicate detection: copies, re-encodes and resized copies end up in one group, and the split
and folds keep every group on one side."""

import os

import numpy as np
import pytest
from PIL import Image

from rockjax.data import dataset as datasets, dedup, folder, splits
from helpers import tiny_config


def photo(seed, size=96):
  """A smooth random 'photo' (real photos are smooth; pure noise would not survive resizing)."""
  rng = np.random.default_rng(seed)
  small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
  return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))


def folder_with_duplicates(root):
  """4 classes x 6 distinct photos, plus copies: exact, JPEG re-encode, resized, and cross-class."""
  root = str(root)
  for c in range(4):
    os.makedirs(os.path.join(root, f'class{c}'))
    for i in range(6):
      Image.fromarray(photo(100 * c + i)).save(os.path.join(root, f'class{c}', f'{i}.png'))
  src = os.path.join(root, 'class0', '0.png')
  with open(src, 'rb') as f:
    raw = f.read()
  with open(os.path.join(root, 'class0', 'copy.png'), 'wb') as f:  # byte-identical
    f.write(raw)
  with open(os.path.join(root, 'class2', 'misfiled.png'), 'wb') as f:  # the same photo, other class
    f.write(raw)
  Image.fromarray(photo(1)).save(os.path.join(root, 'class0', 're.jpg'), quality=80)  # re-encode
  Image.fromarray(photo(2)).resize((61, 61)).save(os.path.join(root, 'class0', 'small.png'))
  return root


def test_copies_reencodes_and_resized_copies_are_grouped(tmp_path):
  root = folder_with_duplicates(tmp_path / 'p')
  s = folder.read_folder(root, folder.ReadOptions(image_size=32))
  groups = dedup.duplicate_groups(s.images, [os.path.join(root, p) for p in s.paths], threshold=4)
  g = dict(zip(s.paths, groups))
  j = os.path.join
  assert g[j('class0', '0.png')] == g[j('class0', 'copy.png')] == g[j('class2', 'misfiled.png')]
  assert g[j('class0', '1.png')] == g[j('class0', 're.jpg')]
  assert g[j('class0', '2.png')] == g[j('class0', 'small.png')]
  summary = dedup.group_summary(groups, s.labels, s.paths, s.class_names)
  assert summary['duplicate_groups'] == 3 and summary['extra_copies'] == 4
  assert summary['cross_class_groups'] == 1
  assert summary['num_groups'] == 24  # every distinct photo is its own group


def test_near_duplicate_groups_match_a_pairwise_reference_across_chunks():
  """Chunked Hamming distances find exactly the pairs a plain double loop finds (chunk 7 puts
  near-copies on both sides of chunk boundaries)."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (60, 12, 12, 3), dtype=np.uint8)
  for i in range(0, 60, 4):  # a noisy copy of every fourth image, further on in the list
    images[(i + 9) % 60] = np.clip(images[i].astype(int) + rng.integers(-4, 5, (12, 12, 3)), 0, 255)
  hashes = np.stack([dedup.difference_hash(im) for im in images])
  for threshold in (0, 3, 12):
    parent = list(range(60))

    def root(i):
      while parent[i] != i:
        i = parent[i]
      return i
    for a in range(60):
      for b in range(a + 1, 60):
        if int((hashes[a] != hashes[b]).sum()) <= threshold:
          parent[max(root(a), root(b))] = min(root(a), root(b))
    _, expected = np.unique([root(i) for i in range(60)], return_inverse=True)
    for method in ('all_pairs', 'index', 'auto'):
      got = dedup.duplicate_groups(images, threshold=threshold, chunk=7, method=method)
      np.testing.assert_array_equal(got, expected, err_msg=f'threshold {threshold}, {method}')
    assert threshold == 0 or len(np.unique(got)) < 60  # the planted copies are found


def flip_bits(word, count, rng):
  """`word` with `count` distinct random bits of its 64 flipped."""
  mask = 0
  for bit in rng.choice(64, count, replace=False):
    mask |= 1 << int(bit)
  return np.uint64(int(word) ^ mask)


@pytest.mark.parametrize('sweep_bucket', [32, 3, 1])  # buckets swept together, one by one, both
def test_index_finds_exactly_the_pairs_of_the_all_pairs_search(sweep_bucket, monkeypatch):
  """Multi-index hashing on 64-bit words: copies at exactly `threshold` bits are found (the
  pigeonhole bound is tight) and copies one bit further are not, for every threshold up to 10,
  including pairs found in several bit ranges (reported once) and a crowded bucket (120 words
  sharing their top 20 bits, as flat photos share hashes)."""
  monkeypatch.setattr(dedup, 'SWEEP_BUCKET', sweep_bucket)
  rng = np.random.default_rng(1)
  base = rng.integers(0, 2**63, 400, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, 400,
                                                                                    dtype=np.uint64)
  base[::3] = (base[::3] & np.uint64(2**44 - 1)) | np.uint64(0xABCDE << 44)
  for threshold in (0, 1, 4, 7, 10):
    words = list(base)
    for i in range(0, 400, 5):  # near-copies at threshold and threshold + 1 bits, and an exact one
      words += [flip_bits(base[i], threshold, rng), flip_bits(base[i], threshold + 1, rng),
                base[i]]
    packed = np.array(words, np.uint64)
    a_all, b_all = dedup.near_duplicate_pairs(packed, threshold, chunk=50, method='all_pairs')
    a_idx, b_idx = dedup.near_duplicate_pairs(packed, threshold, chunk=50, method='index')
    assert np.all(a_idx < b_idx)
    assert sorted(zip(a_idx.tolist(), b_idx.tolist())) == sorted(zip(a_all.tolist(),
                                                                     b_all.tolist())), threshold
    copies = {(i, 400 + 3 * (i // 5)) for i in range(0, 400, 5)}  # base i and its threshold copy
    assert copies <= set(zip(a_idx.tolist(), b_idx.tolist())), threshold
    too_far = {(i, 401 + 3 * (i // 5)) for i in range(0, 400, 5)}
    assert not too_far & set(zip(a_idx.tolist(), b_idx.tolist())), threshold


def test_index_bit_ranges_cover_the_word_once():
  for parts in (1, 5, 9, 64):
    ranges = dedup._bit_ranges(parts)
    covered = [s + k for s, w in ranges for k in range(w)]
    assert sorted(covered) == list(range(64)) and len(ranges) == parts


def test_unknown_search_method_is_refused():
  with pytest.raises(ValueError, match="'index' or 'all_pairs'"):
    dedup.near_duplicate_pairs(np.zeros(600, np.uint64), 4, method='kd-tree')


def test_exact_only_mode_finds_only_byte_identical_copies(tmp_path):
  root = folder_with_duplicates(tmp_path / 'p')
  s = folder.read_folder(root, folder.ReadOptions(image_size=32))
  groups = dedup.duplicate_groups(s.images, [os.path.join(root, p) for p in s.paths], threshold=-1)
  summary = dedup.group_summary(groups, s.labels, s.paths, s.class_names)
  assert (summary['duplicate_groups'], summary['extra_copies']) == (1, 2)


def test_difference_hash_is_stable_under_resizing_and_differs_between_photos():
  a, b = photo(1), photo(2)
  ha = dedup.difference_hash(a)
  half = np.asarray(Image.fromarray(a).resize((48, 48)))
  assert (ha != dedup.difference_hash(half)).sum() <= 4
  assert (ha != dedup.difference_hash(b)).sum() > 10


def test_split_and_every_fold_keep_groups_together(tmp_path):
  root = folder_with_duplicates(tmp_path / 'p')
  for seed in range(5):
    ds = datasets.load_dataset(tiny_config(data__dir=root, seed=seed, data__val_fraction=0.3))
    def group_key(p):
      return {'copy.png': '0.png', 'misfiled.png': '0.png', 're.jpg': '1.png',
              'small.png': '2.png'}.get(os.path.basename(p), p)
    train_keys = {group_key(p) for p in ds.train.paths if 'class0' in p or 'misfiled' in p}
    val_keys = {group_key(p) for p in ds.val.paths if 'class0' in p or 'misfiled' in p}
    assert not {'0.png', '1.png', '2.png'} & train_keys & val_keys, seed


def test_kfold_config_validates_each_image_once_with_groups(tmp_path):
  root = folder_with_duplicates(tmp_path / 'p')
  seen = []
  for fold in range(3):
    ds = datasets.load_dataset(tiny_config(data__dir=root, data__kfold=3, data__fold=fold),
                           str(tmp_path / f'w{fold}'))
    seen += ds.val.paths
    assert not set(ds.val.paths) & set(ds.train.paths)
  assert sorted(seen) == sorted(folder.read_folder(root, folder.ReadOptions(image_size=16)).paths)


def test_group_aware_kfold_unit():
  labels = np.repeat(np.arange(3), 20)
  groups = np.arange(60) // 3  # groups of 3
  for train, val in splits.kfold(labels, 4, seed=0, groups=groups):
    assert not set(groups[train]) & set(groups[val])
