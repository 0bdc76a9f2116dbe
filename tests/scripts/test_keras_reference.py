"""scripts/keras_reference.py: the reference's offline augmented copies (the Keras training itself
is what the script measures; tests/scripts/test_peers.py checks the Keras network)."""

import numpy as np

import keras_reference  # noqa: E402  (scripts/, on sys.path: tests/conftest.py)
from helpers import tiny_config


def test_copies_are_seeded_augmented_versions_of_every_image():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
  labels = np.arange(5, dtype=np.int32)
  augment = tiny_config(augment__preset='flip_bright').augment
  x, y = keras_reference.augmented_copies(images, labels, augment, copies=3, seed=1)
  assert x.shape == (15, 16, 16, 3) and x.dtype == np.uint8
  np.testing.assert_array_equal(y, np.tile(labels, 3))
  again, _ = keras_reference.augmented_copies(images, labels, augment, copies=3, seed=1)
  np.testing.assert_array_equal(x, again)
  assert any(not np.array_equal(x[i], x[5 + i]) for i in range(5))  # copies differ
  plain, _ = keras_reference.augmented_copies(images, labels, tiny_config().augment, 2, seed=1)
  np.testing.assert_array_equal(plain, np.tile(images, (2, 1, 1, 1)))
