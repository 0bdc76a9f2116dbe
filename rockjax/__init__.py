"""rockjax: residual CNNs for rock photographs, in JAX/Flax. See README.md for the layout.

Importing the package applies its process-wide defaults (rockjax/environment.py) before any JAX
backend starts; it imports nothing heavy itself.
"""

from rockjax import environment as _environment

_environment.apply()
