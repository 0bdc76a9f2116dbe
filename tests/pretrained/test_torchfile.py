"""The torch-free reader of legacy torch.save files: tensors come back exact (strides, offsets,
dtypes), anything but a state dict of tensors is refused, and broken files are one clear error."""

import os
import pickle
import struct

import numpy as np
import pytest

from rockjax.pretrained import torchfile


class _Storage:
  def __init__(self, key, array):
    self.key, self.array = key, array


class _Global:
  def __init__(self, module, name):
    self.module, self.name = module, name

  def __call__(self, *args):  # pickle wants a callable; the writer saves it by name only
    raise NotImplementedError


class _Tensor:
  def __init__(self, storage, offset, size, stride):
    self.args = (storage, offset, size, stride, False, {})

  def __reduce__(self):
    return (_Global('torch._utils', '_rebuild_tensor_v2'), self.args)


STORAGE_NAMES = {np.dtype(np.float32): 'FloatStorage', np.dtype(np.int64): 'LongStorage'}


class _Writer(pickle._Pickler):
  """Writes what torch.save's legacy format writes, with no torch: globals by name, storages as
  persistent ids."""

  def persistent_id(self, obj):
    if isinstance(obj, _Storage):
      return ('storage', _Global('torch', STORAGE_NAMES[obj.array.dtype]), obj.key, 'cpu',
              obj.array.size, None)
    return None

  def save_global(self, obj, name=None):
    if isinstance(obj, _Global):
      self.write(pickle.GLOBAL + f'{obj.module}\n{obj.name}\n'.encode())
      self.memoize(obj)
      return
    super().save_global(obj, name)

  def save(self, obj, save_persistent_id=True):
    if isinstance(obj, _Global):
      return self.save_global(obj)
    return super().save(obj, save_persistent_id)


def write_legacy(path, entries: dict, storages: list, magic=torchfile.MAGIC_NUMBER):
  with open(path, 'wb') as f:
    for header in (magic, torchfile.PROTOCOL_VERSION, {'little_endian': True}):
      pickle.dump(header, f, protocol=2)
    _Writer(f, protocol=2).dump(entries)
    pickle.dump([s.key for s in storages], f, protocol=2)
    for s in storages:
      f.write(struct.pack('<q', s.array.size))
      f.write(s.array.astype(s.array.dtype.newbyteorder('<')).tobytes())


def test_tensors_come_back_exact(tmp_path):
  data = np.arange(24, dtype=np.float32)
  counts = np.asarray([7], np.int64)
  storage, other = _Storage('0', data), _Storage('1', counts)
  entries = {'conv.weight': _Tensor(storage, 0, (2, 3, 4), (12, 4, 1)),
             'transposed': _Tensor(storage, 0, (4, 3), (1, 4)),  # a strided view
             'offset': _Tensor(storage, 20, (4,), (1,)),
             'bn.num_batches_tracked': _Tensor(other, 0, (), ())}
  path = tmp_path / 'w.pth'
  write_legacy(path, entries, [storage, other])
  out = torchfile.read_state_dict(str(path))
  assert list(out) == list(entries)
  np.testing.assert_array_equal(out['conv.weight'], data.reshape(2, 3, 4))
  np.testing.assert_array_equal(out['transposed'], data[:12].reshape(3, 4).T)
  np.testing.assert_array_equal(out['offset'], data[20:])
  assert out['bn.num_batches_tracked'].dtype == np.int64 and out['bn.num_batches_tracked'] == 7


def test_a_pickle_that_names_anything_else_is_refused_not_run(tmp_path):
  class Evil:
    def __reduce__(self):
      return (os.system, ('echo owned > ' + str(tmp_path / 'owned'),))

  path = tmp_path / 'evil.pth'
  with open(path, 'wb') as f:
    for header in (torchfile.MAGIC_NUMBER, torchfile.PROTOCOL_VERSION, {}):
      pickle.dump(header, f, protocol=2)
    pickle.dump({'x': Evil()}, f, protocol=2)
    pickle.dump([], f, protocol=2)
  with pytest.raises(torchfile.TorchFileError, match=r'refusing to load (posix|os)\.system'):
    torchfile.read_state_dict(str(path))
  assert not (tmp_path / 'owned').exists()


def test_broken_files_are_one_error(tmp_path):
  storage = _Storage('0', np.zeros(4, np.float32))
  good = tmp_path / 'good.pth'
  write_legacy(good, {'w': _Tensor(storage, 0, (4,), (1,))}, [storage])
  raw = good.read_bytes()
  cases = {'truncated': raw[:-5], 'empty': b'', 'text': b'not a checkpoint at all'}
  for name, content in cases.items():
    (tmp_path / name).write_bytes(content)
    with pytest.raises(torchfile.TorchFileError):
      torchfile.read_state_dict(str(tmp_path / name))
  write_legacy(tmp_path / 'magic', {'w': _Tensor(storage, 0, (4,), (1,))}, [storage], magic=1)
  with pytest.raises(torchfile.TorchFileError, match='not a legacy torch.save file'):
    torchfile.read_state_dict(str(tmp_path / 'magic'))
  with pytest.raises(torchfile.TorchFileError, match='reads past the end'):
    bad = tmp_path / 'past.pth'
    write_legacy(bad, {'w': _Tensor(storage, 2, (4,), (1,))}, [storage])
    torchfile.read_state_dict(str(bad))
  with pytest.raises(torchfile.TorchFileError, match='cannot read'):
    torchfile.read_state_dict(str(tmp_path / 'missing.pth'))


def test_reads_the_shipped_imagenet_weights():
  from rockjax import pretrained, schema
  config = schema.base_config()
  config.model.name, config.model.pretrained = 'EfficientNetLite0', 'imagenet'
  state_dict = torchfile.read_state_dict(pretrained.source_path(pretrained.weights_file(
      config.model)))
  assert len(state_dict) == 296
  assert sum(v.size for v in state_dict.values()) == 4_694_073  # 49 num_batches_tracked included
  assert state_dict['_conv_stem.weight'].shape == (32, 3, 3, 3)
  assert state_dict['_blocks.0._depthwise_conv.weight'].shape == (32, 1, 3, 3)
  assert state_dict['_fc.weight'].shape == (1000, 1280)
