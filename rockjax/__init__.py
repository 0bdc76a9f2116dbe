"""rockjax: residual CNNs for rock photographs, in JAX/Flax. See README.md for the layout.

Importing the package applies its process-wide defaults (rockjax/environment.py) before any JAX
backend starts; it imports nothing heavy itself.
"""

from rockjax import environment as _environment

_environment.apply()

# rockjax.train(...) etc.: rockjax/api.py
API = ('train', 'load', 'evaluate', 'export', 'config', 'decode_folder', 'metrics')


def __getattr__(name: str):
  """rockjax.train, load, evaluate, export, config, decode_folder and metrics, imported on first
  use (importing the package stays light)."""
  if name in API:
    from rockjax import api
    return getattr(api, name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
