"""`--mode=export`: the best checkpoint as a TensorFlow SavedModel that takes what a user has.

Signatures (all return `probabilities` [batch, classes], `class_name` [batch] (the top-1 class),
`class_index` [batch] and `class_names` [classes]):
- `serving_default`: uint8 RGB images [batch, height, width, 3] of any size;
- `files`: encoded image files [batch] (JPEG, PNG, GIF, BMP, WebP), as strings.
Both apply the training preprocessing inside the model, computed as rockjax computes it (Pillow's
decoding, EXIF rotation, transparency and resize filters, rebuilt in serving/tf_images.py), so the
exported model scores a photo exactly as `--mode=predict` does. `model.json` beside it records the
class names and the preprocessing. The exported network uses the standard dense convolution op and,
for depthwise convolutions, the form that is fast where it runs (Predictor.for_export), whatever
formulation the run trained with; the parameters are the same.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
from absl import logging

from rockjax.errors import ConfigError
from rockjax.serving import predictor as predictors, tf_loader
from rockjax.training import workdir as workdirs


def _tensorflow():
  return tf_loader.tensorflow('--mode=export (a TensorFlow SavedModel)')


PLATFORMS = ('cpu', 'cuda')  # where the SavedModel runs (TensorFlow on CPU or an NVIDIA GPU)


def serving_module(predictor):
  """A tf.Module whose `images` and `files` functions are the two signatures."""
  tf, _ = _tensorflow()
  from rockjax.serving import tf_images
  size, data = predictor.image_size, predictor.config.data
  model = tf_loader.converted(predictor, '--mode=export (a TensorFlow SavedModel)',
                              polymorphic_shapes=[f'(b, {size}, {size}, 3)'],
                              native_serialization_platforms=PLATFORMS)
  names = tf.constant(predictor.class_names)

  def outputs(pixels):
    probabilities = model(pixels)
    index = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return dict(probabilities=probabilities, class_index=index,
                class_name=tf.gather(names, index), class_names=tf.identity(names))

  def images(images):
    images = _checked(images, 4, 'images must be uint8 [batch, height, width, 3]')
    images = _checked(images, 4, 'images must have 3 channels (RGB) in their last axis: '
                      '[batch, height, width, 3]', channels=3)
    return outputs(tf_images.fit(images, size, data.interpolation, data.aspect))

  def one_file(contents):
    pixels = tf_images.decode(contents, size, data.alpha_background)
    return tf_images.fit(pixels[None], size, data.interpolation, data.aspect)[0]

  def files(files):
    files = _checked(files, 1, 'files must be a 1-D batch of encoded images')
    return outputs(tf.map_fn(one_file, files, fn_output_signature=tf.TensorSpec(
        [size, size, 3], tf.uint8)))

  module = tf.Module()
  module.images = tf.function(images, autograph=False,
                              input_signature=[tf.TensorSpec(None, tf.uint8, name='images')])
  module.files = tf.function(files, autograph=False,
                             input_signature=[tf.TensorSpec(None, tf.string, name='files')])
  return module


def _checked(x, rank: int, message: str, channels: int | None = None):
  """`x` with its static shape set, after a check that fails with `message` (not with TF's own
  shape error: the check is a branch that runs before anything reads the shape)."""
  import tensorflow as tf
  ok = tf.equal(tf.rank(x), rank)
  if channels is not None:
    ok = tf.cond(ok, lambda: tf.equal(tf.shape(x)[-1], channels), lambda: False)
  shape = [None] * rank if channels is None else [None] * (rank - 1) + [channels]
  def fail():  # an empty tensor of the right shape, made after the failing assertion
    with tf.control_dependencies([tf.debugging.Assert(False, [message])]):
      return tf.zeros([0 if d is None else d for d in shape], x.dtype)
  return tf.ensure_shape(tf.cond(ok, lambda: tf.identity(x), fail), shape)


FORMATS = ('saved_model', 'tflite', 'tflite_int8', 'onnx')  # export.formats


def parse_formats(text: str) -> list[str]:
  formats = [f.strip() for f in text.split(',') if f.strip()]
  unknown = [f for f in formats if f not in FORMATS]
  if unknown or not formats:
    raise ConfigError(f'export.formats={text!r}: choose from {", ".join(FORMATS)} '
                      '(comma-separated)')
  return formats


def export_saved_model(workdir: str, out_dir: str | None = None) -> str:
  """The SavedModel alone, without the report (the Python route to the default export)."""
  return export_workdir(workdir, dict(formats='saved_model', report=False), out_dir)


def export_workdir(workdir: str, export_config, out_dir: str | None = None) -> str:
  """Writes every format of export.formats into `out_dir` (default <workdir>/export), with
  model.json and, when export.report is set, report.json; replaces what was there only once all
  of it is written."""
  tf, _ = _tensorflow()
  get = export_config.get
  formats = parse_formats(get('formats', 'saved_model'))
  training = workdirs.training_holder(workdir)  # a run still training: its best may change
  predictor = predictors.load_predictor(workdir, calibrated=True)
  out_dir = out_dir or get('output_dir') or os.path.join(workdir, 'export')
  tmp = f'{out_dir}.tmp'
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  if 'saved_model' in formats:
    module = serving_module(predictor.for_export())
    tf.saved_model.save(module, os.path.join(tmp, 'saved_model'),
                        signatures={'serving_default': module.images, 'files': module.files})
  from rockjax.serving import export_report, tflite
  if 'tflite' in formats or 'onnx' in formats:  # ONNX is converted from the float TFLite file
    _write_bytes(os.path.join(tmp, export_report.FILES['tflite']), tflite.convert(predictor))
  if 'onnx' in formats:
    from rockjax.serving import onnx_export
    onnx_export.convert(os.path.join(tmp, export_report.FILES['tflite']),
                        os.path.join(tmp, export_report.FILES['onnx']))
    if 'tflite' not in formats:
      os.remove(os.path.join(tmp, export_report.FILES['tflite']))
  if 'tflite_int8' in formats:
    calibration, _ = export_report.run_images(predictor, workdir, 'train',
                                              get('calibration_images', 600))
    _write_bytes(os.path.join(tmp, export_report.FILES['tflite_int8']),
                 tflite.convert(predictor, calibration))
  meta = metadata(predictor, training is not None)
  meta['formats'] = formats
  with open(os.path.join(tmp, 'model.json'), 'w') as f:
    json.dump(meta, f, indent=2)
  if get('report', True):
    report = export_report.measure(predictor, workdir, tmp, formats, get('latency_runs', 100))
    with open(os.path.join(tmp, 'report.json'), 'w') as f:
      json.dump(report, f, indent=2)
    logging.info('Exported formats against the original:\n%s', export_report.format_report(report))
  shutil.rmtree(out_dir, ignore_errors=True)
  os.replace(tmp, out_dir)
  logging.info('Exported %s (epoch %d) to %s.', predictor.checkpoint, predictor.epoch, out_dir)
  if training is not None:
    logging.warning('Training was still running in %s (%s): this export is its best checkpoint as '
                    'of epoch %d, and a later best will need another export.', workdir, training,
                    predictor.epoch)
  return out_dir


def _write_bytes(path: str, data: bytes) -> None:
  with open(path, 'wb') as f:
    f.write(data)


def metadata(predictor, training_still_running: bool) -> dict:
  data = predictor.config.data
  return dict(
      class_names=predictor.class_names, model=predictor.config.model.name,
      checkpoint_epoch=predictor.epoch, checkpoint=predictor.checkpoint,
      temperature=predictor.temperature,  # fitted by --mode=eval (calibration.json); 1: none
      training_still_running=training_still_running,
      signatures={
          'serving_default': 'images: uint8 RGB [batch, height, width, 3], any size',
          'files': 'files: string [batch], encoded JPEG, PNG, GIF, BMP or WebP files'},
      outputs={'probabilities': 'float32 [batch, classes] (softmax)',
               'class_name': 'string [batch], the top-1 class',
               'class_index': 'int32 [batch]', 'class_names': 'string [classes]'},
      preprocessing=dict(
          inside_the_model=True, image_size=data.image_size, channels='RGB',
          aspect=data.aspect, interpolation=data.interpolation,
          resize=f'Pillow {RESIZE_NAMES[data.interpolation]}, 8-bit, as Image.resize',
          jpeg='decoded at the reduced DCT scale Pillow draft() picks for twice image_size; '
               'EXIF orientation applied',
          transparency=f'composited onto grey level {data.alpha_background}',
          scaling='none: uint8 0-255 in, normalised inside the model'),
      # Kept from the first export format, for callers that read them:
      image_size=data.image_size, input_dtype='uint8')


RESIZE_NAMES = {'nearest': 'NEAREST', 'bilinear': 'BILINEAR', 'bicubic': 'BICUBIC',
                'lanczos': 'LANCZOS', 'area': 'BOX'}


def load_saved_model(out_dir: str):
  """(callable uint8 images -> probabilities numpy, metadata dict) of an exported model."""
  tf, _ = _tensorflow()
  loaded = tf.saved_model.load(os.path.join(out_dir, 'saved_model'))
  with open(os.path.join(out_dir, 'model.json')) as f:
    meta = json.load(f)
  serve = loaded.signatures['serving_default']
  return (lambda images: np.asarray(serve(images=tf.constant(images))['probabilities']),
          meta)


def load_file_signature(out_dir: str):
  """A callable: list of file paths -> the `files` signature's outputs, as numpy."""
  tf, _ = _tensorflow()
  serve = tf.saved_model.load(os.path.join(out_dir, 'saved_model')).signatures['files']
  def call(paths):
    contents = []
    for path in paths:
      with open(path, 'rb') as f:
        contents.append(f.read())
    return {k: np.asarray(v) for k, v in serve(files=tf.constant(contents)).items()}
  return call
