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


def _images(n_per_class: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
  images = [synthetic.make_image(name, np.random.default_rng([seed, label, i]), size)
            for label, name in enumerate(synthetic.CLASSES) for i in range(n_per_class)]
  return np.stack(images).astype(np.float32) / 255, np.repeat(np.arange(4), n_per_class)


def _held_out_accuracy(features_fn) -> float:
  """Softmax regression on `features_fn(images)`, fit on one draw, scored on another."""
  (x_train, y_train), (x_test, y_test) = _images(80, seed=11), _images(40, seed=12)
  f_train, f_test = features_fn(x_train), features_fn(x_test)
  mu, sd = f_train.mean(0), f_train.std(0) + 1e-6
  f_train, f_test = (f_train - mu) / sd, (f_test - mu) / sd
  w, b, onehot = np.zeros((f_train.shape[1], 4)), np.zeros(4), np.eye(4)[y_train]
  for _ in range(1500):
    z = f_train @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    grad = p / p.sum(1, keepdims=True) - onehot
    w -= 0.5 * (f_train.T @ grad / len(f_train) + 1e-3 * w)
    b -= 0.5 * grad.mean(0)
  return float(((f_test @ w + b).argmax(1) == y_test).mean())


def _colour_features(x: np.ndarray) -> np.ndarray:
  """Mean colour and a 4x4x4 colour histogram: what a photo's colours say, with no layout."""
  q = np.minimum((x * 4).astype(int), 3)
  bins = (q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).reshape(len(x), -1)
  hist = np.stack([np.bincount(row, minlength=64) for row in bins]) / bins.shape[1]
  return np.concatenate([x.mean((1, 2)), hist], 1)


def _texture_features(x: np.ndarray) -> np.ndarray:
  """Colour-blind layout statistics of the grey image: contrast, edges, and their direction."""
  g = x.mean(-1)
  g = (g - g.mean((1, 2), keepdims=True)) / (g.std((1, 2), keepdims=True) + 1e-6)
  dx, dy = np.diff(g, axis=2)[:, :-1], np.diff(g, axis=1)[:, :, :-1]
  mag = np.hypot(dx, dy)
  coherence = np.hypot((dx ** 2 - dy ** 2).mean((1, 2)), 2 * (dx * dy).mean((1, 2))) / (
      (mag ** 2).mean((1, 2)) + 1e-6)  # 1: every edge runs one way (bands); 0: no direction
  dark = (g < -1.5).mean((1, 2))  # share of pixels far below the image's own mean (holes)
  feats = [x.mean(-1).std((1, 2)), mag.mean((1, 2)), (mag > 1).mean((1, 2)), coherence, dark,
           ((g[:, 1:] * g[:, :-1]).mean((1, 2)))]
  return np.stack(feats, 1)


def test_colour_alone_does_not_solve_it():
  """A classifier that sees only colours does far worse than one that sees a little texture."""
  colour = _held_out_accuracy(_colour_features)
  texture = _held_out_accuracy(_texture_features)
  assert colour < 0.5, colour  # chance is 0.25
  assert texture > colour + 0.2, (texture, colour)


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
