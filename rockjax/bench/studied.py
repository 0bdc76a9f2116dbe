"""The internals that the checks in scripts/ measure by name: each is what a script's question is
about (is the port right, how fast is this formulation, does this search find the same pairs), so
it is named here once rather than imported from its sub-package by every script."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from rockjax import schema
from rockjax.data import dataset as datasets, dedup, folder
from rockjax.models import depthwise, efficientnet, layers
from rockjax.serving import label_issues

# Depthwise convolutions (rockjax/models/depthwise.py): (x, kernel, stride, impl) -> y.
depthwise_conv = depthwise.depthwise_conv
same_padding = depthwise.same_padding  # TensorFlow's 'SAME': (before, after) for a size

# EfficientNet-Lite (rockjax/models/efficientnet.py), for the Keras and PyTorch twins.
is_frozen = layers.is_frozen  # (top-level module name, frozen names) -> bool


@dataclasses.dataclass(frozen=True)
class EfficientNetLayout:
  """What a twin of an EfficientNet-Lite variant needs to be built layer for layer."""
  blocks: list  # (kernel, stride, expansion, input channels, output channels) per MBConv block
  stem_channels: int
  top_channels: int
  input_mean: float  # the network scales uint8 pixels as (x - input_mean) / input_std
  input_std: float


def efficientnet_layout(name: str) -> EfficientNetLayout:
  """The layout of the variant `name` (EfficientNetLite0/1/2)."""
  width, depth, _, _ = efficientnet.VARIANTS[name]
  return EfficientNetLayout(blocks=efficientnet.block_specs(width, depth),
                            stem_channels=efficientnet.STEM_CHANNELS,
                            top_channels=efficientnet.TOP_CHANNELS,
                            input_mean=efficientnet.INPUT_MEAN, input_std=efficientnet.INPUT_STD)


def native_size(name: str) -> int:
  """The input size the variant's ImageNet weights were trained at."""
  return efficientnet.VARIANTS[name][2]


def imagenet_network(name: str, depthwise_impl: str = 'auto', scaling=None):
  """(apply, variables, number of classes) of the EfficientNet-Lite `name` with its ImageNet
  weights and ImageNet head, as rockjax loads them (rockjax/pretrained/); `apply(variables,
  uint8 images)` -> logits, jitted. `scaling`: (mean, std) in place of the input scaling."""
  from rockjax import pretrained
  model, variables = pretrained.imagenet_network(
      name, datasets.cache_dir(schema.base_config().data), depthwise_impl=depthwise_impl)
  if scaling is not None:
    model = model.clone(input_mean=scaling[0], input_std=scaling[1])
  apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
  return apply, variables, pretrained.IMAGENET_CLASSES


def logits_in_batches(apply, variables, images: np.ndarray, batch: int = 32) -> np.ndarray:
  return np.concatenate([np.asarray(apply(variables, images[i:i + batch]))
                         for i in range(0, len(images), batch)])


# Class-folder trees (rockjax/data/folder.py).
IMAGE_EXTENSIONS = folder.EXTENSIONS  # the file names a class folder's images may end in
class_folders = folder.class_folders  # root -> the class folder names, sorted


def read_images(root: str, image_size: int) -> np.ndarray:
  """Every image of a class-folder tree, uint8, read as training reads it at `image_size` px."""
  return folder.read_folder(root, folder.ReadOptions(image_size=image_size)).images


# The near-duplicate search (rockjax/data/dedup.py).
packed_hashes = dedup.packed_hashes  # images -> 64-bit difference hashes
near_duplicate_pairs = dedup.near_duplicate_pairs  # (hashes, threshold, chunk, method) -> (a, b)


def fullest_bucket(packed: np.ndarray, threshold: int) -> int:
  """The most images sharing one bit range's value: the index compares those all against all."""
  return max(int(np.unique(key, return_counts=True)[1].max())
             for key in dedup.range_keys(packed, threshold + 1))


# The label-issue finder (rockjax/serving/label_issues.py).
LABEL_ISSUE_METHODS = label_issues.METHODS
find_label_issues = label_issues.find  # (labels, probabilities, method) -> [{'index': ...}, ...]


def exported_files_signature(export_dir: str):
  """The exported SavedModel's `files` signature (a batch of photo paths -> probabilities), as a
  deployment would load it (rockjax/serving/export.py)."""
  from rockjax.serving import export
  return export.load_file_signature(export_dir)
