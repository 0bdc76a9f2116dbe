"""rockjax: residual CNNs for rock photographs, in JAX/Flax. See README.md."""

from rockjax import xla_flags as _xla_flags

_xla_flags.apply()  # XLA:CPU defaults, before any JAX backend starts (see rockjax/xla_flags.py)
