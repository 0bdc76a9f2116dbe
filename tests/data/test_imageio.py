"""Decoding one file: every Pillow mode to RGB uint8, EXIF orientation, resizing, bad-file reasons."""

import numpy as np
import pytest
from PIL import Image

from rockjax.data import imageio
from helpers import write_image


def load(path, size=8, **kw):
  return imageio.load_image(str(path), size, **kw)


@pytest.mark.parametrize('mode,fmt,ext', [
    ('RGB', 'PNG', 'png'), ('RGB', 'JPEG', 'jpg'), ('L', 'PNG', 'png'), ('L', 'JPEG', 'jpeg'),
    ('RGBA', 'PNG', 'png'), ('LA', 'PNG', 'png'), ('P', 'PNG', 'png'), ('CMYK', 'JPEG', 'jpg'),
    ('CMYK', 'TIFF', 'tif'), ('RGB', 'BMP', 'bmp'), ('RGB', 'WEBP', 'webp'), ('1', 'PNG', 'png'),
])
def test_every_mode_becomes_rgb_uint8_of_the_requested_size(tmp_path, mode, fmt, ext):
  path = write_image(str(tmp_path / f'x.{ext}'), mode=mode, fmt=fmt)
  out = load(path, size=12)
  assert out.shape == (12, 12, 3) and out.dtype == np.uint8


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
  arr = np.full((10, 10), 40000, np.uint16)
  path = str(tmp_path / 'g16.png')
  Image.fromarray(arr).save(path)
  assert Image.open(path).mode.startswith('I')
  out = load(path, size=4)
  assert out.shape == (4, 4, 3)
  np.testing.assert_allclose(out, round(40000 / 65535 * 255), atol=1)


def test_transparent_pixels_become_the_background_grey(tmp_path):
  rgba = np.zeros((6, 6, 4), np.uint8)
  rgba[..., 0] = 255  # red, but fully transparent
  path = str(tmp_path / 'clear.png')
  Image.fromarray(rgba, 'RGBA').save(path)
  np.testing.assert_array_equal(load(path, size=6, background=255), 255)
  np.testing.assert_array_equal(load(path, size=6, background=0), 0)


def test_exif_orientation_is_applied(tmp_path):
  arr = np.zeros((20, 40, 3), np.uint8)  # landscape, left half white
  arr[:, :20] = 255
  img = Image.fromarray(arr)
  exif = img.getexif()
  exif[0x0112] = 6  # "rotate 90 CW to display"
  path = str(tmp_path / 'rot.jpg')
  img.save(path, exif=exif, quality=95)
  out = imageio.load_image(path, 40, aspect='stretch')
  # After rotating 90 degrees clockwise the white half is on top.
  assert out[:10].mean() > 200 and out[-10:].mean() < 50


def test_center_crop_keeps_the_middle_and_stretch_keeps_everything(tmp_path):
  arr = np.zeros((10, 30, 3), np.uint8)
  arr[:, 10:20] = 255  # white middle third
  path = str(tmp_path / 'wide.png')
  Image.fromarray(arr).save(path)
  assert load(path, size=10, aspect='center_crop').min() == 255
  stretched = load(path, size=9, aspect='stretch')
  assert stretched[:, 0].max() == 0 and stretched[:, 4].min() == 255


@pytest.mark.parametrize('interpolation', ['nearest', 'bilinear', 'bicubic', 'lanczos', 'area'])
def test_interpolations(tmp_path, interpolation):
  path = write_image(str(tmp_path / 'x.png'), size=(33, 17))
  assert load(path, size=16, interpolation=interpolation).shape == (16, 16, 3)


def test_bad_files_raise_bad_image_with_a_reason(tmp_path):
  empty = tmp_path / 'empty.jpg'
  empty.write_bytes(b'')
  text = tmp_path / 'notes.jpg'
  text.write_text('this is not a picture')
  good = write_image(str(tmp_path / 'good.jpg'), size=(64, 64), fmt='JPEG')
  truncated = tmp_path / 'cut.jpg'
  truncated.write_bytes(open(good, 'rb').read()[:300])
  cases = {empty: imageio.EMPTY_FILE, text: imageio.NOT_AN_IMAGE,
           truncated: imageio.TRUNCATED, tmp_path / 'missing.png': imageio.UNREADABLE}
  for path, reason in cases.items():
    with pytest.raises(imageio.BadImage) as info:
      load(path)
    assert info.value.reason == reason, path
