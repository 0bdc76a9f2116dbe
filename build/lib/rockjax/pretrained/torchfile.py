"""A legacy (pre-zip) `torch.save` file read into NumPy arrays, without torch.

The legacy format is a sequence of pickles: a magic number, a protocol version, system information,
the saved object (here a state dict of tensors), and the list of storage keys; after them, for each
key in that order, an int64 element count and the storage's raw little-endian bytes. Tensors refer
to storages through `persistent_load` ids ('storage', type, key, location, numel, view) and are
rebuilt by `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`.

The unpickler resolves only the handful of names such a state dict uses, so a file that asks for
anything else (arbitrary code, which a pickle can name) is refused instead of run.
"""

from __future__ import annotations

import collections
import pickle
import struct
from typing import BinaryIO

import numpy as np

MAGIC_NUMBER = 0x1950a86a20f9469cfc6c
PROTOCOL_VERSION = 1001
STORAGE_DTYPES = {
    'FloatStorage': np.float32, 'DoubleStorage': np.float64, 'HalfStorage': np.float16,
    'LongStorage': np.int64, 'IntStorage': np.int32, 'ShortStorage': np.int16,
    'CharStorage': np.int8, 'ByteStorage': np.uint8, 'BoolStorage': np.bool_,
}


class TorchFileError(ValueError):
  """The file is not a legacy torch.save file of tensors that this reader understands."""


class _Storage:
  """A storage named by the pickle, filled from the bytes after it."""

  def __init__(self, dtype, numel: int):
    self.dtype, self.numel = np.dtype(dtype), numel
    self.data: np.ndarray | None = None


class _StorageType:
  """Stands in for torch.FloatStorage and friends inside persistent ids."""

  def __init__(self, name: str):
    self.name = name


def _rebuild_tensor(storage: _Storage, offset: int, size, stride, *unused):
  return ('tensor', storage, int(offset), tuple(size), tuple(stride))


def _ordered_dict():
  return collections.OrderedDict()


class _Unpickler(pickle.Unpickler):
  SAFE = {
      ('collections', 'OrderedDict'): _ordered_dict,
      ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
      ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
  }

  def __init__(self, file, storages: dict):
    super().__init__(file)
    self.storages = storages

  def find_class(self, module: str, name: str):
    if (module, name) in self.SAFE:
      return self.SAFE[module, name]
    if module == 'torch' and name in STORAGE_DTYPES:
      return _StorageType(name)
    raise TorchFileError(f'refusing to load {module}.{name}: not part of a state dict of tensors')

  def persistent_load(self, saved_id):
    if not (isinstance(saved_id, tuple) and saved_id and saved_id[0] == 'storage'):
      raise TorchFileError(f'unexpected persistent id {saved_id!r}')
    storage_type, key, _location, numel = saved_id[1:5]
    if len(saved_id) > 5 and saved_id[5] is not None:
      raise TorchFileError('storage views are not supported')
    name = storage_type.name if isinstance(storage_type, _StorageType) else str(storage_type)
    if name not in STORAGE_DTYPES:
      raise TorchFileError(f'unsupported storage type {name!r}')
    if key not in self.storages:
      self.storages[key] = _Storage(STORAGE_DTYPES[name], int(numel))
    return self.storages[key]


def _read_storage(f: BinaryIO, storage: _Storage, key: str) -> None:
  header = f.read(8)
  if len(header) != 8:
    raise TorchFileError(f'the file ends before storage {key!r}')
  (numel,) = struct.unpack('<q', header)
  if numel != storage.numel:
    raise TorchFileError(f'storage {key!r} holds {numel} values, the pickle says {storage.numel}')
  nbytes = numel * storage.dtype.itemsize
  raw = f.read(nbytes)
  if len(raw) != nbytes:
    raise TorchFileError(f'the file ends inside storage {key!r}')
  storage.data = np.frombuffer(raw, storage.dtype.newbyteorder('<')).astype(storage.dtype)


def _tensor(entry) -> np.ndarray:
  _, storage, offset, size, stride = entry
  if storage.data is None:
    raise TorchFileError('a tensor refers to a storage that the file does not hold')
  itemsize = storage.dtype.itemsize
  needed = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else 0
  if needed > storage.numel:
    raise TorchFileError(f'a tensor of shape {size} reads past the end of its storage')
  view = np.lib.stride_tricks.as_strided(storage.data[offset:], shape=size,
                                         strides=tuple(s * itemsize for s in stride))
  return np.array(view)  # a contiguous copy, detached from the storage


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """{name: array} of every tensor in a legacy torch.save state dict, in the file's order."""
  try:
    with open(path, 'rb') as f:
      try:
        magic = pickle.load(f)
        version = pickle.load(f)
      except Exception as e:
        raise TorchFileError(f'{path} is not a torch.save file ({type(e).__name__})') from e
      if magic != MAGIC_NUMBER:
        raise TorchFileError(f'{path} is not a legacy torch.save file (the zip format, or another '
                             'file)')
      if version != PROTOCOL_VERSION:
        raise TorchFileError(f'{path}: unsupported torch.save protocol version {version!r}')
      pickle.load(f)  # system information: endianness, sizes of short/int/long
      storages: dict = {}
      try:
        obj = _Unpickler(f, storages).load()
        keys = pickle.load(f)
      except TorchFileError:
        raise
      except Exception as e:
        raise TorchFileError(f'{path}: unreadable pickle ({type(e).__name__}: {e})') from e
      for key in keys:
        if key not in storages:
          raise TorchFileError(f'{path}: storage {key!r} is listed but never used')
        _read_storage(f, storages[key], key)
  except OSError as e:
    raise TorchFileError(f'cannot read {path}: {e}') from e
  if not isinstance(obj, dict):
    raise TorchFileError(f'{path} holds a {type(obj).__name__}, not a state dict')
  out = {}
  for name, entry in obj.items():
    if not (isinstance(entry, tuple) and entry and entry[0] == 'tensor'):
      raise TorchFileError(f'{path}: entry {name!r} is not a tensor')
    out[str(name)] = _tensor(entry)
  return out
