"""rockjax's image reading (data/imageio.py) rebuilt from TensorFlow ops, for inside an export.

An exported model takes encoded files or uint8 images of any size and must see exactly the pixels
that training and `--mode=predict` saw. TensorFlow's own resizes are other filters (its 'area' is
not Pillow's BOX), so this module computes Pillow's resampling itself: the same filter taps, the
same 22-bit fixed-point coefficients, a horizontal then a vertical pass each rounded to uint8
(Pillow's src/libImaging/Resample.c), and NEAREST as Pillow's affine transform. JPEGs are decoded
at the same reduced DCT scale Pillow's `draft` picks, and transparency is composited onto the same
background with Pillow's integer arithmetic. tests/serving/test_tf_images.py holds it to Pillow.

What TensorFlow cannot decode (TIFF, EXIF rotation, CMYK JPEGs) is listed in docs/deployment.md.
"""

from __future__ import annotations

import math

import tensorflow as tf

PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed-point precision for 8-bit images
_ZERO = tf.constant(0.0, tf.float64)
_ONE = tf.constant(1.0, tf.float64)


def _box(x):
  return tf.cast((x > -0.5) & (x <= 0.5), tf.float64)


def _bilinear(x):
  x = tf.abs(x)
  return tf.where(x < 1.0, 1.0 - x, _ZERO)


def _bicubic(x, a=-0.5):
  x = tf.abs(x)
  near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
  far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
  return tf.where(x < 1.0, near, tf.where(x < 2.0, far, _ZERO))


def _sinc(x):
  safe = tf.where(tf.equal(x, 0.0), _ONE, x)
  return tf.where(tf.equal(x, 0.0), _ONE, tf.sin(math.pi * safe) / (math.pi * safe))


def _lanczos(x):
  return tf.where((x >= -3.0) & (x < 3.0), _sinc(x) * _sinc(x / 3.0), _ZERO)


FILTERS = {'area': (_box, 0.5), 'bilinear': (_bilinear, 1.0), 'bicubic': (_bicubic, 2.0),
           'lanczos': (_lanczos, 3.0)}  # data.interpolation -> (Pillow's filter, its support)


def _runtime(value, dtype=tf.float64):
  """`value` as a tensor that Grappler's constant folding cannot see through: folding regroups
  `(a - b) + 0.5` into `a - (b - 0.5)`, which rounds differently from Pillow's C."""
  return tf.raw_ops.PlaceholderWithDefault(input=tf.constant(value, dtype), shape=[])


def _taps(in_size, out_size: int, interpolation: str):
  """Pillow's precompute_coeffs: (indices [out, k] int32, fixed-point weights [out, k] float64),
  each double operation in Pillow's order."""
  fn, support = FILTERS[interpolation]
  half, out_f = _runtime(0.5), _runtime(float(out_size))
  in_f = tf.cast(in_size, tf.float64)
  scale = in_f / out_f
  filterscale = tf.maximum(scale, 1.0)
  support = _runtime(support) * filterscale
  # Pillow sizes its tap arrays by the largest possible filter: ceil(support) * 2 + 1.
  ksize = tf.cast(tf.math.ceil(support), tf.int32) * 2 + 1
  center = (tf.range(out_f, dtype=tf.float64) + half) * scale
  xmin = tf.maximum(tf.cast(center - support + half, tf.int32), 0)  # C's (int) truncates
  xmax = tf.minimum(tf.cast(center + support + half, tf.int32), in_size) - xmin
  k = tf.range(ksize)[None, :]
  x = xmin[:, None] + k
  w = fn((tf.cast(x, tf.float64) - center[:, None] + half) * (1.0 / filterscale))
  w = tf.where(k < xmax[:, None], w, _ZERO)
  total = tf.reduce_sum(w, axis=1, keepdims=True)
  w = tf.where(tf.equal(total, 0.0), w, w / tf.where(tf.equal(total, 0.0), _ONE, total))
  one = float(1 << PRECISION_BITS)
  fixed = tf.where(w < 0, tf.math.ceil(w * one - 0.5), tf.floor(w * one + 0.5))  # (int)(+-0.5+v)
  return tf.minimum(x, in_size - 1), fixed


def _pass(images, indices, weights, axis: int):
  """One resampling pass over `axis` of uint8 images [B, H, W, C], rounded to uint8 as Pillow."""
  taps = tf.cast(tf.gather(images, indices, axis=axis), tf.float64)  # the axis becomes [out, k]
  shape = [1] * 5
  shape[axis], shape[axis + 1] = -1, tf.shape(weights)[1]
  total = tf.reduce_sum(taps * tf.reshape(weights, tf.stack(shape)), axis=axis + 1)
  rounded = tf.floor((total + float(1 << (PRECISION_BITS - 1))) / float(1 << PRECISION_BITS))
  return tf.cast(tf.clip_by_value(rounded, 0.0, 255.0), tf.uint8)


def _nearest(images, size: int):
  """Pillow's NEAREST resize: the affine transform's source pixel int((x + 0.5) * in / out)."""
  def source(n):
    scale = tf.cast(n, tf.float64) / size
    return tf.minimum(tf.cast((tf.range(size, dtype=tf.float64) + 0.5) * scale, tf.int32), n - 1)
  shape = tf.shape(images)
  return tf.gather(tf.gather(images, source(shape[1]), axis=1), source(shape[2]), axis=2)


def resize(images, size: int, interpolation: str):
  """uint8 [B, H, W, C] -> [B, size, size, C], as Pillow's `Image.resize((size, size), filter)`."""
  shape = tf.shape(images)
  if interpolation == 'nearest':
    out = _nearest(images, size)
  else:
    def horizontal(x):
      return tf.cond(tf.equal(tf.shape(x)[2], size), lambda: x,
                     lambda: _pass(x, *_taps(tf.shape(x)[2], size, interpolation), axis=2))
    def vertical(x):
      return tf.cond(tf.equal(tf.shape(x)[1], size), lambda: x,
                     lambda: _pass(x, *_taps(tf.shape(x)[1], size, interpolation), axis=1))
    # Pillow skips a pass whose axis keeps its size, and runs the vertical pass first when the
    # height shrinks by more than twice as many pixels as the width (Resample.c, Pillow 13).
    vertical_first = (shape[1] > size) & (shape[1] - size > (shape[2] - size) * 2)
    out = tf.cond(vertical_first, lambda: horizontal(vertical(images)),
                  lambda: vertical(horizontal(images)))
  same = tf.equal(shape[1], size) & tf.equal(shape[2], size)
  out = tf.cond(same, lambda: images, lambda: out)
  return tf.ensure_shape(out, images.shape[:1].concatenate([size, size]).concatenate(
      images.shape[3:]))


def center_crop(images):
  """The centred square of [B, H, W, C], as imageio.resize's crop."""
  shape = tf.shape(images)
  side = tf.minimum(shape[1], shape[2])
  top, left = (shape[1] - side) // 2, (shape[2] - side) // 2
  return images[:, top:top + side, left:left + side, :]


def fit(images, size: int, interpolation: str, aspect: str):
  """uint8 RGB [B, H, W, 3] of any size -> the model's [B, size, size, 3], as imageio.resize."""
  if aspect == 'center_crop':
    images = center_crop(images)
  return resize(images, size, interpolation)


def composite(rgba, background: int):
  """RGBA uint8 [H, W, 4] onto an opaque grey `background`, in Pillow's `alpha_composite`
  integer arithmetic (7 fraction bits, division by 255 as two shifts), as imageio.to_rgb."""
  src = tf.cast(rgba, tf.int64)
  alpha = src[..., 3:]
  out_a255 = alpha * 255 + 255 * (255 - alpha)
  coef1 = alpha * 255 * 255 * 128 // tf.maximum(out_a255, 1)
  coef2 = 255 * 128 - coef1
  tmp = src[..., :3] * coef1 + background * coef2 + (0x80 << 7)
  shift = tf.bitwise.right_shift
  out = shift(shift(shift(tmp, 8) + tmp, 8), 7)
  return tf.cast(tf.where(tf.equal(alpha, 0), tf.cast(background, tf.int64), out), tf.uint8)


def _rgb(pixels, background: int):
  """Decoded pixels [H, W, 1|2|3|4] -> RGB [H, W, 3], transparency composited."""
  channels = tf.shape(pixels)[-1]
  gray_alpha = lambda: composite(tf.concat([tf.repeat(pixels[..., :1], 3, axis=-1),
                                            pixels[..., 1:2]], axis=-1), background)
  return tf.switch_case(channels - 1, [
      lambda: tf.repeat(pixels[..., :1], 3, axis=-1), gray_alpha,
      lambda: pixels[..., :3], lambda: composite(pixels, background)])


def _jpeg(contents, draft_size: int):
  """A JPEG decoded at the reduced DCT scale (1/2, 1/4, 1/8) Pillow's `draft` picks for
  `draft_size`: the largest that keeps both sides at least `draft_size`."""
  shape = tf.io.extract_jpeg_shape(contents)
  scale = tf.minimum(shape[1] // draft_size, shape[0] // draft_size)
  # Pillow opens a JPEG with a multi-picture (MPF) segment as MPO, and never drafts those.
  head = tf.io.decode_raw(tf.strings.substr(contents, 0, 65536), tf.uint8)
  mpf = tf.reduce_any((head[:-3] == 77) & (head[1:-2] == 80) & (head[2:-1] == 70) &
                      (head[3:] == 0))
  scale = tf.where(mpf, 1, scale)
  index = tf.cast(scale >= 2, tf.int32) + tf.cast(scale >= 4, tf.int32) + tf.cast(scale >= 8,
                                                                                   tf.int32)
  decode = lambda ratio: lambda: tf.io.decode_jpeg(contents, channels=3, ratio=ratio,
                                                   dct_method='INTEGER_ACCURATE')
  return tf.switch_case(index, [decode(1), decode(2), decode(4), decode(8)])


def _exif_orientation(contents):
  """The EXIF orientation tag (1-8; 1 when absent) of a JPEG, read from its APP1 segment."""
  n = 65536
  raw = tf.io.decode_raw(tf.strings.substr(contents, 0, n), tf.uint8)
  raw = tf.cast(tf.pad(raw, [[0, n + 16 - tf.shape(raw)[0]]]), tf.int32)
  marker = tf.constant(list(b'Exif\x00\x00'), tf.int32)
  hits = tf.reduce_all(tf.stack([raw[i:n + i] == marker[i] for i in range(6)]), axis=0)
  tiff = tf.cast(tf.argmax(tf.cast(hits, tf.int32)), tf.int32) + 6
  little = tf.equal(raw[tiff], 73)  # 'II' (little-endian) or 'MM'
  def byte(pos):
    return tf.gather(raw, tf.clip_by_value(pos, 0, n + 15))
  def u16(pos):
    return tf.where(little, byte(pos) + byte(pos + 1) * 256, byte(pos) * 256 + byte(pos + 1))
  def u32(pos):
    return tf.where(little, u16(pos) + u16(pos + 2) * 65536, u16(pos) * 65536 + u16(pos + 2))
  ifd = tiff + u32(tiff + 4)
  count = tf.minimum(u16(ifd), 64)
  entries = ifd + 2 + 12 * tf.range(64)
  tags = tf.where(tf.range(64) < count, u16(entries), -1)
  found = tf.equal(tags, 0x0112)
  value = u16(entries[tf.argmax(tf.cast(found, tf.int32))] + 8)
  ok = tf.reduce_any(hits) & tf.reduce_any(found) & (value >= 1) & (value <= 8)
  return tf.where(ok, value, 1)


def upright(pixels, orientation):
  """[H, W, C] turned as Pillow's `ImageOps.exif_transpose` turns an image with this tag."""
  transpose = lambda x: tf.transpose(x, [1, 0, 2])
  return tf.switch_case(orientation - 1, [
      lambda: pixels,
      lambda: pixels[:, ::-1],  # 2: mirrored
      lambda: pixels[::-1, ::-1],  # 3: rotated 180
      lambda: pixels[::-1],  # 4: flipped top to bottom
      lambda: transpose(pixels),  # 5: transposed
      lambda: tf.image.rot90(pixels, k=3),  # 6: rotated 90 clockwise
      lambda: transpose(pixels)[::-1, ::-1],  # 7: transversed
      lambda: tf.image.rot90(pixels, k=1),  # 8: rotated 90 counter-clockwise
  ])


def decode(contents, size: int, background: int):
  """One encoded file (JPEG, PNG, GIF, BMP, WebP) -> RGB uint8 [H, W, 3], as imageio.open_rgb."""
  head = tf.strings.substr(contents, 0, 4)
  is_webp = tf.equal(head, b'RIFF') & tf.equal(tf.strings.substr(contents, 8, 4), b'WEBP')
  known = [
      (tf.io.is_jpeg(contents),
       lambda: upright(_jpeg(contents, 2 * size), _exif_orientation(contents))),
      (tf.equal(head, b'\x89PNG'),
       lambda: _rgb(tf.io.decode_png(contents, channels=4), background)),
      (tf.equal(head, b'GIF8'), lambda: tf.io.decode_gif(contents)[0]),
      (tf.equal(tf.strings.substr(contents, 0, 2), b'BM'),
       lambda: tf.io.decode_bmp(contents, channels=0)[..., :3]),
      (is_webp, lambda: _rgb(tf.io.decode_webp(contents)[0], background)),  # the first frame
  ]
  def unknown():
    check = tf.debugging.Assert(False, ['not a JPEG, PNG, GIF, BMP or WebP file; decode it '
                                        'yourself and use the images signature'])
    with tf.control_dependencies([check]):
      return tf.zeros([1, 1, 3], tf.uint8)
  return tf.ensure_shape(tf.case(known, default=unknown, exclusive=False), [None, None, 3])
