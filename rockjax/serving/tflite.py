"""TensorFlow Lite files of a trained run: float32, and int8 by post-training quantisation.

The TFLite model takes uint8 RGB images of the trained size [1, size, size, 3] (the interpreter can
be resized to other batch sizes) and returns probabilities [1, classes]: decoding and resizing stay
with the caller, as rockjax reads photos (model.json says how; the SavedModel does them inside).
It is converted from the network with the standard convolution ops (Predictor.with_standard_ops),
whatever formulation the run trained with. int8 quantises weights and activations, calibrated on
training images; its input stays uint8 and its output float32.
"""

from __future__ import annotations

import numpy as np

from rockjax.serving import tf_loader


def _tensorflow():
  return tf_loader.tensorflow('TFLite export')


def convert(predictor, calibration: np.ndarray | None = None) -> bytes:
  """The flatbuffer of `predictor`'s network (standard ops); int8 when `calibration` (uint8
  images [N, size, size, 3], N > 0) is given."""
  tf, _ = _tensorflow()
  predictor = predictor.with_standard_ops()
  size = predictor.image_size
  module = tf.Module()
  module.f = tf.function(tf_loader.converted(predictor, 'TFLite export'), autograph=False,
                         input_signature=[tf.TensorSpec([1, size, size, 3], tf.uint8)])
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [module.f.get_concrete_function()], module)
  if calibration is not None:
    if not len(calibration):
      raise ValueError('int8 calibration needs at least one training image')
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None]] for image in calibration)
  return converter.convert()


class Interpreter:
  """A TFLite file as a callable: uint8 images [N, size, size, 3] -> probabilities [N, K]."""

  def __init__(self, path: str):
    tf, _ = _tensorflow()
    import warnings
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')  # tf.lite.Interpreter's notice about ai_edge_litert
      self._interpreter = tf.lite.Interpreter(model_path=path)
    self._interpreter.allocate_tensors()
    self._input = self._interpreter.get_input_details()[0]['index']
    self._output = self._interpreter.get_output_details()[0]['index']

  def one(self, image: np.ndarray) -> np.ndarray:
    self._interpreter.set_tensor(self._input, image[None])
    self._interpreter.invoke()
    return self._interpreter.get_tensor(self._output)[0]

  def __call__(self, images: np.ndarray) -> np.ndarray:
    return np.stack([self.one(image) for image in images])
