"""`export/report.json`: every exported format beside the original, on the run's validation split,
measured side by side in one run: top-1 accuracy, agreement with the original's top-1, the largest
probability difference, and batch-1 latency (p50, p99) on this CPU.

The original is rockjax's JAX predictor (the best checkpoint, as `--mode=predict` runs it); the
SavedModel is timed through its `serving_default` signature on images of the trained size, the
TFLite files through the TFLite interpreter and the ONNX file through onnxruntime (CPU). Latencies are of the model alone: reading and resizing
the photo are not included, for any format.
"""

from __future__ import annotations

import os

import numpy as np
from absl import logging

from rockjax.data import dataset as datasets
from rockjax.errors import DataError
from rockjax.serving import predict, tflite

FILES = {'tflite': 'model.tflite', 'tflite_int8': 'model_int8.tflite', 'onnx': 'model.onnx'}


def run_images(predictor, workdir: str, split: str, limit: int = 0):
  """(uint8 images, labels) of the run's saved `split` ('train' or 'val'), read as training read
  them; the first `limit` when limit > 0. A DataError when they cannot be read."""
  if not os.path.exists(os.path.join(workdir, 'split.json')):
    raise DataError(f'{workdir!r} has no split.json, so its {split} photos are unknown')
  dataset = datasets.load_dataset(predictor.config, workdir, write=False)
  if dataset.streamed:
    raise DataError(f'{workdir!r} streamed its data; its {split} photos are not at hand')
  image_set = getattr(dataset, split)
  n = len(image_set) if limit <= 0 else min(limit, len(image_set))
  return image_set.images[:n], image_set.labels[:n]


def callables(predictor, out_dir: str, formats) -> dict:
  """name -> callable uint8 images [N, size, size, 3] -> probabilities, for every format."""
  fns = {'original': predictor.probabilities}
  if 'saved_model' in formats:
    import tensorflow as tf
    serve = tf.saved_model.load(os.path.join(out_dir, 'saved_model')).signatures['serving_default']
    fns['saved_model'] = lambda images: serve(images=tf.constant(images))['probabilities'].numpy()
  for name, filename in FILES.items():
    if name in formats and name != 'onnx':
      fns[name] = tflite.Interpreter(os.path.join(out_dir, filename))
  if 'onnx' in formats:
    from rockjax.serving import onnx_export
    fns['onnx'] = onnx_export.Session(os.path.join(out_dir, FILES['onnx']))
  return fns


def measure(predictor, workdir: str, out_dir: str, formats, latency_runs: int) -> dict:
  fns = callables(predictor, out_dir, formats)
  report = dict(data='the run\'s validation split', latency='batch 1, this CPU, model only '
                '(no reading or resizing), after 2 warm-up calls', rows={})
  try:
    images, labels = run_images(predictor, workdir, 'val')
  except DataError as e:
    logging.warning('Export report without accuracy: %s', e)
    report['data'] = f'not measured: {e}'
    size = predictor.image_size
    images = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    labels = None
  reference = None
  for name, fn in fns.items():
    row = predict.latency_ms(fn, images[:1], latency_runs) if latency_runs else {}
    if labels is not None:
      probabilities = np.asarray(fn(images))
      reference = probabilities if reference is None else reference
      row.update(accuracy=float((probabilities.argmax(1) == labels).mean()),
                 top1_agreement_with_original=float(
                     (probabilities.argmax(1) == reference.argmax(1)).mean()),
                 max_abs_probability_difference=float(np.abs(probabilities - reference).max()))
      row['images'] = int(len(labels))
    if name in FILES:
      row['file_bytes'] = os.path.getsize(os.path.join(out_dir, FILES[name]))
    report['rows'][name] = row
  return report


def format_report(report: dict) -> str:
  lines = []
  for name, row in report['rows'].items():
    parts = [name]
    if 'accuracy' in row:
      parts.append(f'accuracy {100 * row["accuracy"]:.2f}%')
      parts.append(f'top-1 as original {100 * row["top1_agreement_with_original"]:.1f}%')
    if 'p50_ms' in row:
      parts.append(f'p50 {row["p50_ms"]:.2f} ms, p99 {row["p99_ms"]:.2f} ms')
    lines.append(', '.join(parts))
  return '\n'.join(lines)
