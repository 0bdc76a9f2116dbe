"""serving/tf_images.py: TensorFlow ops that give exactly the pixels rockjax's Pillow reading gives,
traced as in an export (a tf.function, where Grappler rewrites the graph)."""

import os
import pathlib

import numpy as np
import pytest
from PIL import Image

from helpers import write_image
from rockjax.data import imageio

tf = pytest.importorskip('tensorflow')
from rockjax.serving import tf_images  # noqa: E402  (needs TensorFlow)

SHAPES = [(137, 121), (40, 50), (96, 96), (97, 95), (95, 97), (275, 183), (120, 100), (180, 150),
          (20, 300), (300, 20), (33, 32)]  # (height, width), to a 32 or 96 px square


@pytest.mark.parametrize('interpolation', sorted(imageio.RESAMPLE))
def test_resize_equals_pillow_in_every_pixel(interpolation):
  """Every filter, shrinking and growing, each pass order Pillow picks, and no resize at all."""
  rng = np.random.default_rng(0)
  resize = tf.function(lambda x, size: tf_images.resize(x, size, interpolation),
                       reduce_retracing=True)
  for h, w in SHAPES:
    size = 96 if max(h, w) < 200 and min(h, w) > 90 else 32
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image = (image // 2 + np.linspace(0, 127, w, dtype=np.uint8)[None, :, None]).astype(np.uint8)
    expected = np.asarray(Image.fromarray(image).resize((size, size),
                                                         imageio.RESAMPLE[interpolation]))
    got = resize(tf.constant(image[None]), size)[0].numpy()
    np.testing.assert_array_equal(got, expected, err_msg=f'{interpolation} {h}x{w} -> {size}')


def _files(d):
  """Images of every kind rockjax reads, as files; each with what Pillow reads from it."""
  rng = np.random.default_rng(1)
  smooth = np.clip(np.linspace(0, 255, 700)[None, :, None] + rng.normal(0, 20, (500, 700, 3)),
                   0, 255).astype(np.uint8)
  rgba = rng.integers(0, 256, (30, 40, 4), dtype=np.uint8)
  rgba[:10, :, 3] = 0
  files = [write_image(os.path.join(d, 'big.jpg'), smooth, quality=90),  # decoded at 1/2 scale
           write_image(os.path.join(d, 'gray.jpg'), mode='L', size=(50, 70)),
           write_image(os.path.join(d, 'small.png'), size=(7, 5)),
           write_image(os.path.join(d, 'palette.png'), mode='P', size=(40, 30)),
           write_image(os.path.join(d, 'gray_alpha.png'), mode='LA'),
           write_image(os.path.join(d, 'photo.gif'), fmt='GIF'),
           write_image(os.path.join(d, 'photo.bmp')),
           write_image(os.path.join(d, 'photo.webp'), lossless=True),
           write_image(os.path.join(d, 'jpeg_named.png'), fmt='JPEG')]  # the name lies
  alpha = os.path.join(d, 'alpha.png')
  Image.fromarray(rgba, 'RGBA').save(alpha)
  alpha_webp = os.path.join(d, 'alpha.webp')
  Image.fromarray(rgba, 'RGBA').save(alpha_webp, lossless=True)
  files += [alpha, alpha_webp]
  for orientation in range(1, 9):
    exif = Image.Exif()
    exif[0x0112] = orientation
    files.append(write_image(os.path.join(d, f'turned{orientation}.jpg'), size=(60, 40),
                             exif=exif.tobytes()))
  return files


@pytest.mark.parametrize('size,interpolation,aspect', [(64, 'area', 'center_crop'),
                                                       (32, 'nearest', 'stretch')])
def test_decoded_files_equal_what_rockjax_reads(tmp_path, size, interpolation, aspect):
  read = tf.function(lambda contents: tf_images.fit(
      tf_images.decode(contents, size, 200)[None], size, interpolation, aspect)[0])
  for path in _files(str(tmp_path)):
    expected = imageio.load_image(path, size, interpolation, aspect, background=200)
    got = read(tf.constant(pathlib.Path(path).read_bytes())).numpy()
    np.testing.assert_array_equal(got, expected, err_msg=os.path.basename(path))


def test_a_file_it_cannot_decode_is_named_in_the_error(tmp_path):
  path = write_image(str(tmp_path / 'photo.tif'), fmt='TIFF')
  with pytest.raises(tf.errors.InvalidArgumentError, match='not a JPEG, PNG, GIF, BMP or WebP'):
    tf_images.decode(tf.constant(pathlib.Path(path).read_bytes()), 32, 255)
