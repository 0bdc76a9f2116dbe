"""rockjax/bench/studied.py: the internals the checks measure, named once, behaving as the
package's own (the port's logits, the block table, the duplicate search, reading folders)."""

import os

import numpy as np

from helpers import write_image
from rockjax.bench import studied

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'pretrained')


def test_efficientnet_layouts_follow_the_variants():
  lite0, lite2 = studied.efficientnet_layout('EfficientNetLite0'), studied.efficientnet_layout(
      'EfficientNetLite2')
  assert len(lite0.blocks) == 16 and len(lite2.blocks) > 16
  assert (lite0.stem_channels, lite0.top_channels) == (32, 1280)
  assert lite0.blocks[0][3] == 32 and lite0.blocks[-1][4] == 320
  assert studied.native_size('EfficientNetLite1') == 240


def test_imagenet_network_gives_the_reference_models_logits():
  # The same two 64 px images and PyTorch logits as tests/pretrained/test_port.py.
  with np.load(os.path.join(HERE, 'lite0_reference.npz')) as data:
    images, expected = data['images'], data['logits']
  apply, variables, num_classes = studied.imagenet_network('EfficientNetLite0')
  assert num_classes == 1000
  logits = studied.logits_in_batches(apply, variables, images, batch=1)
  np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)
  # Another input scaling is another function of the same weights.
  other, _, _ = studied.imagenet_network('EfficientNetLite0', scaling=(0.0, 255.0))
  assert np.abs(np.asarray(other(variables, images)) - expected).max() > 1e-2


def test_fullest_bucket_counts_the_photos_that_share_a_range_value():
  distinct = np.array([1 << i for i in range(0, 60, 6)], np.uint64)
  assert studied.fullest_bucket(distinct, threshold=4) >= 2  # all zero in most ranges
  same = np.full(7, 12345, np.uint64)
  assert studied.fullest_bucket(same, threshold=4) == 7
  a, b = studied.near_duplicate_pairs(same, 4, 256, 'index')
  assert len(a) == len(b) == 7 * 6 // 2


def test_read_images_reads_a_class_folder_tree_as_training_does(tmp_path):
  for c in ('basalt', 'coal'):
    for i in range(2):
      write_image(str(tmp_path / c / f'{i}.png'), seed=i, size=(30, 20))
  (tmp_path / 'coal' / 'notes.txt').write_text('not an image')
  assert studied.class_folders(str(tmp_path)) == ['basalt', 'coal']
  images = studied.read_images(str(tmp_path), 16)
  assert images.shape == (4, 16, 16, 3) and images.dtype == np.uint8
  assert studied.packed_hashes(images).shape == (4,)
