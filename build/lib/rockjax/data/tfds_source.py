"""`data.tfds=NAME`: any TensorFlow Datasets image-classification set by name, read into memory.

`NAME` is what `tfds.builder` takes: `tf_flowers`, `cifar10:3.0.2`, `name/config`. The image and
label features are found from the dataset's features (one `Image` and one `ClassLabel`; when
there are several, `data.tfds_image_key` / `data.tfds_label_key` choose), class names come from
the label feature, and every image gets a photo folder's preprocessing (RGB, transparency
composited onto `data.alpha_background`, `data.aspect`, `data.interpolation`, `data.image_size`).
Examples are named `<split>/<index>` (in the dataset's own order), which is how `split.json`,
reports and `data.exclude` refer to them.

TensorFlow Datasets (and TensorFlow) are imported here only. Nothing is downloaded unless the
dataset is missing from `data.tfds_data_dir` and `data.tfds_download` is on.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
from absl import logging
from PIL import Image

from rockjax.data import folder, imageio
from rockjax.errors import ConfigError, DataError, DependencyError

IN_MEMORY = ('auto', 'true', 'false')  # data.in_memory: streaming is data/streaming.py


def _tfds():
  try:
    import tensorflow_datasets as tfds
  except ImportError as e:
    raise DependencyError(f'config.data.tfds needs tensorflow-datasets ({e}); pip install -r '
                          'requirements.txt') from e
  return tfds


def builder(data_config):
  """The dataset's builder (its data prepared, downloading only when allowed)."""
  tfds = _tfds()
  import rockjax.datasets.rock_photos  # noqa: F401  (registers rock_photos with TFDS)
  kwargs = dict(data_dir=data_config.tfds_data_dir or None)
  try:
    b = tfds.builder(data_config.tfds, **kwargs)
  except Exception as e:  # unknown names, bad versions and configs raise various types
    raise ConfigError(f'config.data.tfds: {data_config.tfds!r} is not a TFDS dataset this '
                      f'installation knows ({type(e).__name__}: {str(e)[:200]})') from e
  if data_config.tfds_download:
    b.download_and_prepare()
  return b


def feature_keys(features, image_key: str = '', label_key: str = '') -> tuple[str, str]:
  """(image feature, label feature) of a FeaturesDict: the ones named, or the only ones."""
  tfds = _tfds()
  found = {}
  for kind, cls, chosen, option in (('image', tfds.features.Image, image_key, 'tfds_image_key'),
                                    ('label', tfds.features.ClassLabel, label_key,
                                     'tfds_label_key')):
    candidates = [k for k, f in features.items() if isinstance(f, cls)]
    if chosen:
      if chosen not in candidates:
        raise ConfigError(f'config.data.{option}: {chosen!r} is not an {cls.__name__} feature of '
                          f'this dataset; its {cls.__name__} features are {candidates}')
      found[kind] = chosen
    elif len(candidates) == 1:
      found[kind] = candidates[0]
    else:
      raise ConfigError(f'config.data.{option}: the dataset has {len(candidates)} '
                        f'{cls.__name__} features {candidates}; name the one to use')
  return found['image'], found['label']


def to_image(array: np.ndarray, options: folder.ReadOptions) -> np.ndarray:
  """A decoded TFDS image [H, W, C] (C = 1, 3 or 4) as the run's (size, size, 3) uint8 RGB."""
  array = np.asarray(array)
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  img = imageio.to_rgb(Image.fromarray(array.astype(np.uint8)), options.background)
  return np.asarray(imageio.resize(img, options.image_size, options.interpolation, options.aspect))


def open_split(b, split: str, data_config, **as_dataset_kwargs):
  """`b.as_dataset` of one split in its stored order; a DataError naming the split when it
  cannot be read (not prepared, or no such split)."""
  try:
    return b.as_dataset(split=split, shuffle_files=False, **as_dataset_kwargs)
  except Exception as e:
    raise DataError(f'config.data.tfds: cannot read split {split!r} of {data_config.tfds!r} '
                    f'({type(e).__name__}: {str(e)[:200]}); is it prepared under '
                    f'{data_config.tfds_data_dir or "~/tensorflow_datasets"}?') from e


def example_paths(split: str, num_examples: int) -> list[str]:
  """How examples are named (in split.json, reports, data.exclude): `<split>/<index>`."""
  name = split.replace('/', '_')
  return [f'{name}/{i:06d}' for i in range(num_examples)]


def split_report(b, split: str, data_config, labels: np.ndarray, keys: tuple[str, str],
                 **extra) -> dict:
  """data_report.json's entry for one split read by name (`keys`: image and label features);
  a DataError when the split is empty."""
  if not len(labels):
    raise DataError(f'split {split!r} of {data_config.tfds!r} holds no examples')
  class_names = b.info.features[keys[1]].names
  counts = np.bincount(labels, minlength=len(class_names))
  return dict(root=f'tfds:{data_config.tfds}', split=split, num_images=len(labels),
              class_counts={n: int(c) for n, c in zip(class_names, counts)}, num_skipped=0,
              **extra, version=str(b.info.version), image_key=keys[0], label_key=keys[1])


def read_split(b, split: str, data_config, options: folder.ReadOptions) -> folder.ImageSet:
  """One split (TFDS split syntax: 'train', 'test', 'train[:90%]') as an in-memory ImageSet."""
  tfds = _tfds()
  image_key, label_key = feature_keys(b.info.features, data_config.tfds_image_key,
                                      data_config.tfds_label_key)
  class_names = list(b.info.features[label_key].names)
  start = time.perf_counter()
  ds = open_split(b, split, data_config)
  images, labels, hashes = [], [], []
  for example in tfds.as_numpy(ds):
    raw = np.asarray(example[image_key])
    hashes.append(hashlib.sha256(raw.tobytes() + str(raw.shape).encode()).hexdigest())
    images.append(to_image(raw, options))
    labels.append(int(example[label_key]))
  labels = np.asarray(labels, np.int32)
  report = split_report(b, split, data_config, labels, (image_key, label_key),
                        read_seconds=round(time.perf_counter() - start, 3))
  image_set = folder.ImageSet(
      images=np.stack(images), labels=labels, paths=example_paths(split, len(labels)),
      class_names=class_names, root=report['root'], report=report,
      content_hashes=hashes)  # for exact copies
  logging.info('tfds %s (%s), split %s: %d examples, %d classes, in %.1fs.', data_config.tfds,
               b.info.version, split, len(image_set), len(class_names),
               image_set.report['read_seconds'])
  return image_set

