"""A photo folder decoded once into one file (`.npz`), for machines that do not have the photos.

`scripts/decode_folder.py` writes it: the images as a config's preprocessing made them (size,
interpolation, aspect, alpha background), labels, class names, paths relative to the folder, each
file's content hash (so byte-identical copies are still grouped), and the folder's read report.
Setting `data.dir` to the file trains on it as on the folder: the same images and the same
duplicate groups, hence the same splits and folds for the same seed. Its preprocessing settings
must equal the config's; a different file, or a damaged one, is a DataError naming it.
"""

from __future__ import annotations

import json
import os

import numpy as np

from rockjax.data import folder
from rockjax.errors import DataError

FORMAT = 'rockjax-decoded-set'
VERSION = 1


def is_decoded(path: str) -> bool:
  return path.lower().endswith('.npz')


def settings(options: folder.ReadOptions) -> dict:
  """The preprocessing a decoded set was made with, as the config's data section names it."""
  return dict(image_size=options.image_size, interpolation=options.interpolation,
              aspect=options.aspect, alpha_background=options.background)


def write(path: str, image_set: folder.ImageSet, options: folder.ReadOptions,
          hashes: list[str]) -> None:
  """Writes the set to `path` (compressed, atomically)."""
  meta = dict(format=FORMAT, version=VERSION, class_names=image_set.class_names,
              settings=settings(options), root=os.path.abspath(image_set.root),
              report=image_set.report)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f'{path}.{os.getpid()}.tmp.npz'
  np.savez_compressed(tmp, images=image_set.images, labels=image_set.labels,
                      paths=np.asarray(image_set.paths, dtype=str),
                      hashes=np.asarray(hashes, dtype=str), meta=np.asarray(json.dumps(meta)))
  os.replace(tmp, path)


def read(path: str, options: folder.ReadOptions) -> folder.ImageSet:
  """The decoded set at `path`, checked against the config's preprocessing."""
  if not os.path.isfile(path):
    raise DataError(f'decoded set {path!r} does not exist')
  try:
    with np.load(path) as z:
      meta = json.loads(str(z['meta']))
      images, labels = z['images'], z['labels']
      paths, hashes = [str(p) for p in z['paths']], [str(h) for h in z['hashes']]
  except Exception as e:  # a truncated download, another kind of .npz, ...
    raise DataError(f'{path!r} is not a readable rockjax decoded set ({type(e).__name__}: {e}); '
                    'write it again with scripts/decode_folder.py') from e
  if meta.get('format') != FORMAT or meta.get('version') != VERSION:
    raise DataError(f'{path!r} is not a rockjax decoded set of version {VERSION}')
  wanted = settings(options)
  changed = {k: (meta['settings'][k], v) for k, v in wanted.items() if meta['settings'][k] != v}
  if changed:
    raise DataError(f'decoded set {path!r} was made with other preprocessing than the config '
                    'asks for: ' + ', '.join(f'data.{k} {a!r} there, {b!r} here'
                                             for k, (a, b) in changed.items())
                    + '; use its settings or decode the folder again')
  if not (len(images) == len(labels) == len(paths) == len(hashes)):
    raise DataError(f'decoded set {path!r} is inconsistent (arrays of different lengths)')
  report = dict(meta['report'], decoded_set=os.path.abspath(path), decoded_from=meta['root'])
  return folder.ImageSet(images=images, labels=labels.astype(np.int32), paths=paths,
                         class_names=list(meta['class_names']), root=path, report=report,
                         content_hashes=hashes)
