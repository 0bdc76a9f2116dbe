"""The generated default dataset: deterministic, balanced, class-dependent, cached atomically."""

import os

import numpy as np

from rockjax.data import synthetic


def test_images_are_uint8_rgb_and_deterministic():
  a = synthetic.make_image('granite', np.random.default_rng([0, 1, 2]), 48)
  b = synthetic.make_image('granite', np.random.default_rng([0, 1, 2]), 48)
  assert a.shape == (48, 48, 3) and a.dtype == np.uint8
  np.testing.assert_array_equal(a, b)
  c = synthetic.make_image('granite', np.random.default_rng([0, 1, 3]), 48)
  assert not np.array_equal(a, c)


def test_classes_differ_in_texture_statistics():
  """Per-class mean of simple statistics must differ: the set is learnable, not noise."""
  feats = {}
  for name in synthetic.CLASSES:
    imgs = np.stack([synthetic.make_image(name, np.random.default_rng([7, i]), 32)
                     for i in range(20)]).astype(np.float32)
    gray = imgs.mean(-1)
    grad = np.abs(np.diff(gray, axis=1)).mean((1, 2))
    feats[name] = (imgs.std((1, 2, 3)).mean(), grad.mean())
  values = np.array(list(feats.values()))
  assert len({tuple(np.round(v, 0)) for v in values}) == len(synthetic.CLASSES), feats


def test_ensure_dataset_writes_once_and_reuses(tmp_path):
  root = synthetic.ensure_dataset(str(tmp_path), num_per_class=3, image_size=16, seed=1)
  assert sorted(os.listdir(root)) == sorted(synthetic.CLASSES)
  assert all(len(os.listdir(os.path.join(root, c))) == 3 for c in synthetic.CLASSES)
  mtime = os.path.getmtime(root)
  assert synthetic.ensure_dataset(str(tmp_path), 3, 16, 1) == root
  assert os.path.getmtime(root) == mtime
  assert synthetic.ensure_dataset(str(tmp_path), 3, 16, 2) != root  # another seed, another set
  leftovers = [d for d in os.listdir(os.path.dirname(root)) if d.startswith('.tmp-')]
  assert leftovers == []
