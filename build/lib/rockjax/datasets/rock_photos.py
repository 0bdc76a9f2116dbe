"""`rock_photos`: a class-per-folder tree of rock photos as a versioned TFDS dataset.

Build it once from a folder (the manual directory), share the prepared files, and train on them:

    python scripts/build_rock_photos.py --photos=/path/to/photos --data_dir=/path/to/tfds
    python main.py --config=configs/rocks.py --config.data.tfds=rock_photos \
        --config.data.tfds_data_dir=/path/to/tfds --config.data.test_split=test

The same rules as `data.dir` apply (rockjax/data/folder.py, imageio.py): hidden and system folders
are not classes, files with other extensions and unreadable, corrupt or non-image files are skipped
and listed, grayscale, palette, CMYK, 16-bit and transparent images become 8-bit RGB (transparency
composited onto white), and EXIF orientation is applied. Photos are stored upright with their
longer side at most MAX_SIDE pixels (PNG, lossless from there). Copies and near-copies are grouped
(rockjax/data/dedup.py), and a stratified `test` split of TEST_FRACTION is carved off with whole
groups, so no photo has a twin across `train` and `test`. The dataset's metadata holds the report
(per-class counts, every skipped file and why, the duplicate groups) and a SHA-256 of the source
files, so two teams can check they built from the same photos.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from rockjax.data import dedup, folder, imageio, splits

MAX_SIDE = 512
TEST_FRACTION = 0.1
SEED = 0
DUPLICATE_THRESHOLD = 4  # dHash bits, as data.duplicate_threshold


def read_photos(root: str, max_side: int = MAX_SIDE):
  """(class names, [(relpath, label, upright RGB image)], skipped [(relpath, reason, detail)])."""
  names = folder.class_folders(root)
  files, skipped = folder.discover(root, names, folder.EXTENSIONS)
  photos = []
  for rel, label in files:
    try:
      img = imageio.open_rgb(os.path.join(root, rel), draft_size=max_side)
    except imageio.BadImage as e:
      skipped.append((rel, e.reason, e.detail))
      continue
    img.thumbnail((max_side, max_side), imageio.RESAMPLE['area'])
    photos.append((rel, label, np.asarray(img, np.uint8)))
  return names, photos, sorted(skipped)


def source_digest(root: str, rels: list[str]) -> str:
  digest = hashlib.sha256()
  for rel in sorted(rels):
    digest.update(rel.encode() + b'\0' + dedup.content_hash(os.path.join(root, rel)).encode())
  return digest.hexdigest()


class RockPhotos(tfds.core.GeneratorBasedBuilder):
  """Rock photos from a class-per-folder tree; splits `train` and `test` (duplicates grouped)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First version: upright RGB photos, longer side <= 512 px, a 10% '
                            'duplicate-grouped stratified test split.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = ('Pass the folder of photos, one sub-folder per class, as the '
                                  'manual directory (scripts/build_rock_photos.py --photos=...).')

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(None, None, 3), encoding_format='png'),
            'label': tfds.features.ClassLabel(),  # names set from the folders when building
            'path': tfds.features.Text(),
            'group': np.int64,
        }),
        supervised_keys=('image', 'label'),
        metadata=tfds.core.MetadataDict())

  def _split_generators(self, dl_manager):
    root = os.fspath(dl_manager.manual_dir)
    names, photos, skipped = read_photos(root)
    if not photos:
      raise ValueError(f'{root}: no usable photo')
    self.info.features['label'].names = names
    labels = np.asarray([label for _, label, _ in photos])
    groups = dedup.duplicate_groups([p[2] for p in photos],
                                    [os.path.join(root, p[0]) for p in photos],
                                    DUPLICATE_THRESHOLD)
    rest, test = splits.carve_test(labels, TEST_FRACTION, SEED, groups, len(names))
    summary = dedup.group_summary(groups, labels, [p[0] for p in photos], names)
    counts = np.bincount(labels, minlength=len(names))
    self.info.metadata.update(dict(
        class_counts={n: int(c) for n, c in zip(names, counts)}, num_photos=len(photos),
        skipped=[dict(path=p, reason=r, detail=d) for p, r, d in skipped],
        duplicates=summary,
        source_sha256=source_digest(root, [p[0] for p in photos])))
    logging.info('rock_photos: %d photos in %d classes, %d skipped, %d duplicate groups.',
                 len(photos), len(names), len(skipped), summary['duplicate_groups'])
    return {'train': self._generate_examples(photos, groups, rest),
            'test': self._generate_examples(photos, groups, test)}

  def _generate_examples(self, photos, groups, indices):
    for i in indices:
      rel, label, image = photos[i]
      yield rel, dict(image=image, label=int(label), path=rel, group=int(groups[i]))
