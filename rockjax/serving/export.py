"""`--mode=export`: the best checkpoint as a TensorFlow SavedModel, servable without JAX.

The SavedModel's `serve` signature takes uint8 images [batch, H, W, 3] of the trained size (any batch
size) and returns `probabilities` [batch, num_classes]. `model.json` beside it records the class
names and the preprocessing a caller must apply (resize, interpolation, aspect, RGB). The exported
network always uses the standard convolution ops (conv_impl and depthwise_impl 'xla', the same
parameters), whatever formulation the run trained with.
"""

from __future__ import annotations

import json
import os
import shutil

import jax
import numpy as np
from absl import logging

from rockjax.errors import DependencyError
from rockjax.serving import predictor as predictors
from rockjax.training import workdir as workdirs


def _tensorflow():
  """TensorFlow and jax2tf, imported on this path only; a DependencyError without TensorFlow."""
  try:
    import tensorflow as tf
    from jax.experimental import jax2tf
  except ImportError as e:
    raise DependencyError(f'--mode=export writes a TensorFlow SavedModel and needs TensorFlow, '
                          f'which cannot be imported ({e}); install tensorflow-cpu (see '
                          'requirements.txt), or serve with rockjax.serving.predictor') from e
  return tf, jax2tf


def export_saved_model(workdir: str, out_dir: str | None = None) -> str:
  tf, jax2tf = _tensorflow()
  training = workdirs.training_holder(workdir)  # a run still training: its best may change
  predictor = predictors.load_predictor(workdir).with_standard_ops()
  out_dir = out_dir or os.path.join(workdir, 'export')
  size = predictor.image_size
  variables = jax.device_get(predictor.variables)
  fn = predictor.predict_fn()
  tf_fn = jax2tf.convert(lambda images: fn(variables, images),
                         polymorphic_shapes=[f'(b, {size}, {size}, 3)'], with_gradient=False)

  module = tf.Module()
  module.serve = tf.function(
      lambda images: {'probabilities': tf_fn(images)}, autograph=False,
      input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name='images')])
  tmp = f'{out_dir}.tmp'
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  tf.saved_model.save(module, os.path.join(tmp, 'saved_model'),
                      signatures={'serving_default': module.serve})
  data = predictor.config.data
  meta = dict(class_names=predictor.class_names, image_size=size, channels='RGB',
              input_dtype='uint8', input_range='0-255, no normalisation (done inside the model)',
              interpolation=data.interpolation, aspect=data.aspect,
              alpha_background=data.alpha_background, model=predictor.config.model.name,
              checkpoint_epoch=predictor.epoch, checkpoint=predictor.checkpoint,
              training_still_running=training is not None, signature='serving_default',
              output='probabilities [batch, num_classes] (softmax)')
  with open(os.path.join(tmp, 'model.json'), 'w') as f:
    json.dump(meta, f, indent=2)
  shutil.rmtree(out_dir, ignore_errors=True)
  os.replace(tmp, out_dir)
  logging.info('Exported %s (epoch %d) to %s.', predictor.checkpoint, predictor.epoch, out_dir)
  if training is not None:
    logging.warning('Training was still running in %s (%s): this export is its best checkpoint as '
                    'of epoch %d, and a later best will need another export.', workdir, training,
                    predictor.epoch)
  return out_dir


def load_saved_model(out_dir: str):
  """(callable uint8 images -> probabilities numpy, metadata dict) of an exported model."""
  tf, _ = _tensorflow()
  loaded = tf.saved_model.load(os.path.join(out_dir, 'saved_model'))
  with open(os.path.join(out_dir, 'model.json')) as f:
    meta = json.load(f)
  serve = loaded.signatures['serving_default']
  return (lambda images: np.asarray(serve(images=tf.constant(images))['probabilities']),
          meta)
