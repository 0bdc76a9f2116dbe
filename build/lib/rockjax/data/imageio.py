"""One image file in, one RGB uint8 array of the model's input size out.

`load_image` decodes with Pillow, applies the EXIF orientation, converts grayscale, palette, CMYK,
RGBA and 16-bit images to 8-bit RGB, and resizes with the configured interpolation and aspect
handling. A file that cannot be used raises `BadImage` with a short machine-readable reason.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

RESAMPLE = {  # data.interpolation -> Pillow filter
    'nearest': Image.Resampling.NEAREST,
    'bilinear': Image.Resampling.BILINEAR,
    'bicubic': Image.Resampling.BICUBIC,
    'lanczos': Image.Resampling.LANCZOS,
    'area': Image.Resampling.BOX,
}
ASPECTS = ('stretch', 'center_crop')  # data.aspect

# Reasons a file is skipped, as written into data_report.json.
EMPTY_FILE = 'empty_file'
NOT_AN_IMAGE = 'not_an_image'
TRUNCATED = 'truncated_or_corrupt'
UNREADABLE = 'unreadable'
UNSUPPORTED_EXTENSION = 'unsupported_extension'


class BadImage(Exception):
  """The file cannot be used as an image; `reason` is one of the constants above."""

  def __init__(self, reason: str, detail: str = ''):
    super().__init__(f'{reason}: {detail}' if detail else reason)
    self.reason = reason
    self.detail = detail


def to_rgb(img: Image.Image, background: int = 255) -> Image.Image:
  """Any Pillow mode to 8-bit RGB; transparency is composited onto a uniform grey level."""
  if img.mode in ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I', 'F'):
    arr = np.asarray(img, dtype=np.float64)
    top = 65535.0 if img.mode.startswith('I;16') or arr.max() > 255 else 255.0
    return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert('RGB')
  if img.mode == 'P' and 'transparency' in img.info:
    img = img.convert('RGBA')
  if img.mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La'):
    rgba = img.convert('RGBA')
    canvas = Image.new('RGBA', rgba.size, (background, background, background, 255))
    return Image.alpha_composite(canvas, rgba).convert('RGB')
  if img.mode != 'RGB':
    return img.convert('RGB')
  return img


def resize(img: Image.Image, size: int, interpolation: str, aspect: str) -> Image.Image:
  """Square `size` x `size`: stretch (the reference) or centre-crop to a square first."""
  if aspect == 'center_crop':
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
  if img.size != (size, size):
    img = img.resize((size, size), RESAMPLE[interpolation])
  return img


def load_image(path: str, size: int, interpolation: str = 'nearest', aspect: str = 'stretch',
               background: int = 255) -> np.ndarray:
  """Reads `path` as a (size, size, 3) uint8 RGB array, or raises BadImage."""
  img = open_rgb(path, background, draft_size=2 * size)
  return np.asarray(resize(img, size, interpolation, aspect), dtype=np.uint8)


def open_rgb(path: str, background: int = 255, draft_size: int | None = None) -> Image.Image:
  """Reads `path` as an 8-bit RGB Pillow image, upright (EXIF), or raises BadImage. JPEGs may be
  decoded at a reduced scale that stays at least `draft_size` on each side (big photos read
  fast)."""
  try:
    if os.path.getsize(path) == 0:
      raise BadImage(EMPTY_FILE)
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')  # e.g. Pillow's "palette images with transparency" notes
      with Image.open(path) as img:
        if img.format == 'JPEG' and draft_size:
          img.draft('RGB', (draft_size, draft_size))
        try:
          img.load()
        except (OSError, SyntaxError, ValueError) as e:
          raise BadImage(TRUNCATED, str(e)) from e
        try:
          img = ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block should not cost us the picture
          pass
        return to_rgb(img, background)
  except BadImage:
    raise
  except (PermissionError, FileNotFoundError, IsADirectoryError) as e:
    raise BadImage(UNREADABLE, str(e)) from e
  except UnidentifiedImageError as e:
    raise BadImage(NOT_AN_IMAGE, 'Pillow cannot identify this file as an image') from e
  except Image.DecompressionBombError as e:
    # Pillow refuses images above ~179 megapixels (decompression bombs); camera photos stay far
    # below that.
    raise BadImage(UNREADABLE, str(e)) from e
  except (OSError, SyntaxError, ValueError) as e:
    raise BadImage(TRUNCATED, str(e)) from e
