"""A folder of photos (one sub-folder per class) in, uint8 arrays and a report of what was skipped out.

`read_folder` finds images recursively under each class folder, decodes them on all cores, skips
(and reports, with a reason) every file that cannot be used, and caches the decoded, resized arrays
on disk keyed by the file list, sizes, modification times and resize settings: a second run on an
unchanged folder reads in seconds, and any change to the folder invalidates the cache.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import time

import numpy as np
from absl import logging

from rockjax.data import imageio
from rockjax.errors import DataError

EXTENSIONS = ('.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.bmp', '.tif', '.tiff', '.webp',
              '.gif')
READER_VERSION = 1  # bump when decoding changes, so old caches are not reused


@dataclasses.dataclass
class ImageSet:
  """Decoded images of one folder. `paths` are relative to `root`, in a stable order."""
  images: np.ndarray  # [N, H, W, 3] uint8
  labels: np.ndarray  # [N] int32, indices into class_names
  paths: list[str]
  class_names: list[str]
  root: str
  report: dict
  content_hashes: list[str] | None = None  # of each file, when read from a decoded set

  def __len__(self) -> int:
    return len(self.paths)

  def subset(self, indices) -> 'ImageSet':
    indices = np.asarray(indices, dtype=np.int64)
    hashes = self.content_hashes
    return dataclasses.replace(self, images=self.images[indices], labels=self.labels[indices],
                               paths=[self.paths[i] for i in indices],
                               content_hashes=None if hashes is None else [hashes[i]
                                                                           for i in indices])


def pixels_digest(images: np.ndarray) -> str:
  """SHA-256 of decoded images (their shape, type and values): a cache keyed by it notices a photo
  edited in place, under the same path."""
  digest = hashlib.sha256(repr((images.shape, str(images.dtype))).encode())
  digest.update(np.ascontiguousarray(images).data)
  return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class ReadOptions:
  image_size: int
  interpolation: str = 'nearest'
  aspect: str = 'stretch'
  background: int = 255
  extensions: tuple[str, ...] = EXTENSIONS
  allow_empty_classes: bool = False
  num_workers: int = 0  # 0 means one per CPU core

  @classmethod
  def from_config(cls, data_config) -> 'ReadOptions':
    return cls(image_size=data_config.image_size, interpolation=data_config.interpolation,
               aspect=data_config.aspect, background=data_config.alpha_background,
               extensions=tuple(e if e.startswith('.') else '.' + e
                                for e in data_config.extensions.lower().replace(' ', '').split(',')
                                if e),
               allow_empty_classes=data_config.allow_empty_classes,
               num_workers=data_config.read_workers)


# Folders that archivers and operating systems add beside the photos; never classes.
SYSTEM_FOLDERS = ('__MACOSX', '$RECYCLE.BIN', 'System Volume Information', '@eaDir', 'lost+found')


def not_a_class(name: str) -> bool:
  """Hidden (dot-named) and operating-system folders are not classes."""
  return name.startswith('.') or name in SYSTEM_FOLDERS


def class_folders(root: str) -> list[str]:
  """Sorted names of the class sub-folders of `root`, or a DataError naming what is wrong.

  Hidden and operating-system folders (`__MACOSX`, ...) are left out, with a log line naming them.
  """
  if not root:
    raise DataError('data.dir is empty')
  if not os.path.exists(root):
    raise DataError(f'data folder {root!r} does not exist')
  if not os.path.isdir(root):
    raise DataError(f'data folder {root!r} is not a folder')
  folders = sorted(e.name for e in os.scandir(root) if e.is_dir())
  names = [n for n in folders if not not_a_class(n)]
  ignored = [n for n in folders if not_a_class(n)]
  if ignored:
    logging.warning('%s: ignoring folder(s) %s (hidden or operating-system folders, not classes).',
                    root, ignored)
  if not names:
    raise DataError(f'data folder {root!r} has no class sub-folders; expected one sub-folder of '
                    f'images per class, e.g. {root}/granite/*.jpg')
  return names


def discover(root: str, class_names: list[str], extensions) -> tuple[list, list]:
  """All candidate files under each class folder (recursively) and the files skipped by extension.

  Returns ([(relpath, label)], [(relpath, reason, detail)]), both sorted by path.
  """
  files, skipped = [], []
  for label, name in enumerate(class_names):
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, name)):
      dirnames[:] = sorted(d for d in dirnames if not not_a_class(d))
      for fn in sorted(filenames):
        if fn.startswith('.'):
          continue  # .DS_Store, editor swap files, ...
        rel = os.path.relpath(os.path.join(dirpath, fn), root)
        ext = os.path.splitext(fn)[1].lower()
        if ext in extensions:
          files.append((rel, label))
        else:
          skipped.append((rel, imageio.UNSUPPORTED_EXTENSION, f'extension {ext or "(none)"!r}'))
  return files, skipped


def cache_key(root: str, files: list, options: ReadOptions) -> str:
  entries = []
  for rel, label in files:
    st = os.stat(os.path.join(root, rel))
    entries.append((rel, label, st.st_size, st.st_mtime_ns))
  spec = dict(version=READER_VERSION, root=os.path.abspath(root), files=entries,
              image_size=options.image_size, interpolation=options.interpolation,
              aspect=options.aspect, background=options.background)
  return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]


def _decode_all(root: str, files: list, options: ReadOptions) -> tuple[list, list]:
  """Decodes every file with a thread pool (Pillow releases the GIL while decoding)."""
  def one(item):
    rel, label = item
    try:
      return rel, label, imageio.load_image(os.path.join(root, rel), options.image_size,
                                            options.interpolation, options.aspect,
                                            options.background), None
    except imageio.BadImage as e:
      return rel, label, None, e

  workers = options.num_workers or os.cpu_count() or 1
  good, bad = [], []
  with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
    for rel, label, image, error in pool.map(one, files):
      if error is None:
        good.append((rel, label, image))
      else:
        bad.append((rel, error.reason, error.detail))
  return good, bad


def _save_cache(path: str, images, labels, paths, skipped) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f'{path}.{os.getpid()}.tmp.npz'
  np.savez(tmp, images=images, labels=labels, paths=np.asarray(paths, dtype=str),
           skipped=np.asarray(json.dumps(skipped)))
  os.replace(tmp, path)


def _load_cache(path: str):
  with np.load(path) as z:
    return (z['images'], z['labels'], [str(p) for p in z['paths']],
            [tuple(s) for s in json.loads(str(z['skipped']))])


def read_folder(root: str, options: ReadOptions, cache_dir: str | None = None,
                class_names: list[str] | None = None) -> ImageSet:
  """Reads every usable image under root/<class>/ (see module docstring).

  `class_names` fixes the classes (and their label order), e.g. for a validation folder that must
  use the training folder's classes; by default they are root's sorted sub-folder names.
  """
  start = time.time()
  found = class_folders(root)
  fixed_classes = class_names is not None
  if class_names is None:
    class_names = found
  else:
    unknown = sorted(set(found) - set(class_names))
    if unknown:
      raise DataError(f'{root!r} has class folders {unknown} that are not among the training '
                      f'classes {class_names}')
  files, skipped = discover(root, class_names, options.extensions)
  key = cache_key(root, files, options)
  cache_path = os.path.join(cache_dir, 'folders', f'{key}.npz') if cache_dir else None
  cache_hit = False
  if cache_path and os.path.exists(cache_path):
    try:
      images, labels, paths, bad = _load_cache(cache_path)
      cache_hit = True
    except Exception as e:  # a damaged cache file is re-read, never trusted
      logging.warning('Ignoring unreadable cache %s (%s); reading the folder again.', cache_path, e)
  if not cache_hit:
    good, bad = _decode_all(root, files, options)
    size = options.image_size
    images = (np.stack([g[2] for g in good]) if good
              else np.zeros((0, size, size, 3), np.uint8))
    labels = np.asarray([g[1] for g in good], dtype=np.int32)
    paths = [g[0] for g in good]
    if cache_path:
      try:
        _save_cache(cache_path, images, labels, paths, bad)
      except OSError as e:
        logging.warning('Could not write the image cache %s: %s', cache_path, e)
  skipped = sorted(skipped + [tuple(b) for b in bad])
  image_set = ImageSet(images=images, labels=labels, paths=paths, class_names=list(class_names),
                       root=root, report={})
  image_set.report = build_report(image_set, skipped, time.time() - start, cache_hit, cache_path)
  if fixed_classes:
    # A validation folder may lack a class; its labels must keep the training folder's numbering.
    empty = [n for n, c in image_set.report['class_counts'].items() if c == 0]
    if empty:
      logging.warning('%s has no usable image of class(es) %s.', root, empty)
    return image_set
  return drop_or_reject_empty_classes(image_set, options.allow_empty_classes)


def build_report(image_set: ImageSet, skipped: list, seconds: float, cache_hit: bool,
                 cache_path: str | None) -> dict:
  counts = np.bincount(image_set.labels, minlength=len(image_set.class_names))
  return dict(
      root=os.path.abspath(image_set.root),
      num_images=len(image_set),
      class_counts={n: int(c) for n, c in zip(image_set.class_names, counts)},
      num_skipped=len(skipped),
      skipped_by_reason=dict(collections.Counter(s[1] for s in skipped)),
      skipped_by_class=dict(collections.Counter(s[0].split(os.sep)[0] for s in skipped)),
      skipped=[dict(path=p, reason=r, detail=d) for p, r, d in skipped],
      read_seconds=round(seconds, 3),
      cache_hit=cache_hit,
      cache_path=cache_path,
  )


def drop_or_reject_empty_classes(image_set: ImageSet, allow_empty: bool) -> ImageSet:
  """A class with no usable image is an error, or (when allowed) dropped with a warning."""
  counts = image_set.report['class_counts']
  empty = [n for n, c in counts.items() if c == 0]
  if not empty:
    return image_set
  if not allow_empty:
    raise DataError(
        f'class folder(s) {empty} under {image_set.root!r} have no usable image '
        f'(skipped there: {image_set.report["skipped_by_class"]}); add images, remove the '
        'folder, or set --config.data.allow_empty_classes=True to drop such classes')
  logging.warning('Dropping class folder(s) %s: no usable image.', empty)
  keep = [n for n in image_set.class_names if n not in empty]
  remap = np.asarray([keep.index(n) if n in keep else -1 for n in image_set.class_names])
  report = dict(image_set.report, dropped_classes=empty,
                class_counts={n: counts[n] for n in keep})
  return dataclasses.replace(image_set, labels=remap[image_set.labels].astype(np.int32),
                             class_names=keep, report=report)


def log_report(report: dict, name: str = 'data') -> None:
  if report.get('decoded_set'):  # read from scripts/decode_folder.py's file, not the folder
    source = (f'decoded set {report["decoded_set"]} (made from {report["decoded_from"]}, read '
              f'then in {report["read_seconds"]:.1f}s)')
  else:
    source = (f'{report["root"]} in {report["read_seconds"]:.1f}s '
              f'({"cache hit" if report["cache_hit"] else "decoded, cache written"})')
  logging.info('%s: %d images from %s; per class: %s', name, report['num_images'], source,
               report['class_counts'])
  if report['num_skipped']:
    logging.warning('%s: skipped %d files; by reason: %s; by class: %s (details in '
                    'data_report.json)', name, report['num_skipped'], report['skipped_by_reason'],
                    report['skipped_by_class'])
