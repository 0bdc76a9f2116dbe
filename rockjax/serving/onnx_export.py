"""ONNX from the float TFLite file, through tf2onnx's TFLite reader, run with onnxruntime.

Why this route: jax2tf now serialises the network as StableHLO inside one XlaCallModule op, which
tf2onnx cannot read from a SavedModel; the TFLite file holds ordinary ops (CONV_2D,
DEPTHWISE_CONV_2D, ...) that it converts one by one. jax2onnx, which converts JAX directly, needs an
older orbax-checkpoint (0.11) than rockjax pins. The ONNX model takes what the TFLite file takes:
uint8 RGB [1, size, size, 3] of the trained size, and returns probabilities [1, classes].
"""

from __future__ import annotations

import numpy as np

from rockjax.errors import DependencyError

OPSET = 17


def convert(tflite_path: str, onnx_path: str) -> None:
  try:
    from tf2onnx import convert as tf2onnx_convert
  except ImportError as e:
    raise DependencyError(f'export.formats=onnx needs tf2onnx, which cannot be imported ({e}); '
                          'install it from requirements.txt') from e
  tf2onnx_convert.from_tflite(tflite_path, opset=OPSET, output_path=onnx_path)


class Session:
  """An ONNX file as a callable: uint8 images [N, size, size, 3] -> probabilities [N, K]."""

  def __init__(self, path: str):
    try:
      import onnxruntime
    except ImportError as e:
      raise DependencyError(f'running an ONNX model needs onnxruntime ({e})') from e
    self._session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    self._input = self._session.get_inputs()[0].name

  def one(self, image: np.ndarray) -> np.ndarray:
    return self._session.run(None, {self._input: image[None]})[0][0]

  def __call__(self, images: np.ndarray) -> np.ndarray:
    return np.stack([self.one(image) for image in images])
