"""The data-source registry: the first matching entry reads the data, in a fixed order, and a new
source is one entry."""

import os

import numpy as np
import pytest

from rockjax.data import dataset as datasets, decoded, folder, sources
from helpers import tiny_config, write_image


def photo_folder(root, counts=None):
  counts = counts or {'basalt': 6, 'granite': 6}
  for name, n in counts.items():
    for i in range(n):
      write_image(os.path.join(str(root), name, f'{i}.png'), seed=hash((name, i)) % 10000)
  return str(root)


def test_the_built_in_sources_are_asked_in_order():
  assert [s.name for s in sources.sources()][:5] == [
      'tfds', 'generated', 'decoded', 'split_folders', 'folder']


def test_each_kind_of_data_section_picks_its_source(tmp_path):
  d = tiny_config().data
  assert sources.pick(d).name == 'generated' and sources.is_generated(d)
  d.tfds = 'tf_flowers'
  assert sources.pick(d).name == 'tfds' and sources.pick(d).root(d) == 'tfds:tf_flowers'
  plain = photo_folder(tmp_path / 'plain')
  d = tiny_config(data__dir=plain).data
  assert sources.pick(d).name == 'folder' and not sources.is_generated(d)
  split = tmp_path / 'split'
  photo_folder(split / 'train')
  photo_folder(split / 'val')
  assert sources.pick(tiny_config(data__dir=str(split)).data).name == 'split_folders'
  options = folder.ReadOptions.from_config(d)
  npz = str(tmp_path / 'photos.npz')
  image_set = folder.read_folder(plain, options, str(tmp_path / 'cache'))
  decoded.write(npz, image_set, options, ['0' * 64] * len(image_set))
  assert sources.pick(tiny_config(data__dir=npz).data).name == 'decoded'


def test_a_name_is_registered_once():
  with pytest.raises(ValueError, match='already registered'):
    sources.register(sources.sources()[0])


def test_a_new_source_is_one_entry(tmp_path, monkeypatch):
  """A source registered from a test (photos listed in a text file) is picked before the
  built-in ones it precedes and trains like any other: load_dataset asks only the registry."""
  root = photo_folder(tmp_path / 'photos', {'basalt': 8, 'granite': 8})
  listing = tmp_path / 'photos.list'
  listing.write_text('\n'.join(sorted(os.path.relpath(os.path.join(dp, f), root)
                                      for dp, _, fs in os.walk(root) for f in fs
                                      if '0' not in f)))  # every photo but the 0th of each

  def read(request, root_):
    full = folder.read_folder(root, request.options, request.cache)
    keep = set(listing.read_text().split('\n'))
    image_set = full.subset([i for i, p in enumerate(full.paths) if p in keep])
    return sources._read_one_set(request, root_, image_set)

  entry = sources.Source('listing', 'photos named in a .list file',
                         lambda d: d.dir.endswith('.list'), lambda d: str(listing), read)
  monkeypatch.setattr(sources, '_REGISTRY', [entry] + list(sources.sources()))
  ds = datasets.load_dataset(tiny_config(data__dir=str(listing)), str(tmp_path / 'w'))
  assert len(ds.train) + len(ds.val) == 14
  assert not any(os.path.basename(p) == '0.png' for p in ds.train.paths + ds.val.paths)
  assert np.bincount(ds.train.labels).tolist()[0] > 0
