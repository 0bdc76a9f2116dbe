"""TensorFlow and jax2tf, imported only on the paths that write or run TensorFlow formats (export,
TFLite), so that training, evaluation and prediction never need TensorFlow."""

from __future__ import annotations

from rockjax.errors import DependencyError


def tensorflow(purpose: str):
  """(tf, jax2tf); a DependencyError naming `purpose` when TensorFlow cannot be imported."""
  try:
    import tensorflow as tf
    from jax.experimental import jax2tf
  except ImportError as e:
    raise DependencyError(f'{purpose} needs TensorFlow, which cannot be imported ({e}); install '
                          'tensorflow-cpu (see requirements.txt), or serve with rockjax.load') from e
  return tf, jax2tf


def converted(predictor, purpose: str, **jax2tf_options):
  """`predictor`'s images -> probabilities as a TensorFlow function (jax2tf), its weights
  closed over as constants."""
  import jax
  _, jax2tf = tensorflow(purpose)
  fn, variables = predictor.predict_fn(), jax.device_get(predictor.variables)
  return jax2tf.convert(lambda images: fn(variables, images), with_gradient=False,
                        **jax2tf_options)
