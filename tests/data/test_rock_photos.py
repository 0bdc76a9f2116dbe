"""The rock_photos TFDS builder: a folder with bad and odd files becomes a dataset with the folder
rules applied, duplicates on one side of its test split, a report, and it trains by name."""

import os
import shutil

import pytest

tfds = pytest.importorskip('tensorflow_datasets')

import build_rock_photos  # noqa: E402  (scripts/, on sys.path: tests/conftest.py)
from rockjax.data import dataset as datasets  # noqa: E402
from helpers import tiny_config, write_image  # noqa: E402


def messy_folder(root):
  for c, name in enumerate(('basalt', 'granite')):
    for i in range(10):
      write_image(os.path.join(root, name, f'{i}.png'), seed=50 * c + i, size=(40, 30))
  write_image(os.path.join(root, 'basalt', 'grey.png'), mode='L', seed=91)
  write_image(os.path.join(root, 'basalt', 'clear.png'), mode='RGBA', seed=92)
  write_image(os.path.join(root, 'granite', 'print.jpg'), mode='CMYK', fmt='JPEG', seed=93)
  shutil.copy(os.path.join(root, 'granite', '0.png'), os.path.join(root, 'granite', 'copy.png'))
  with open(os.path.join(root, 'granite', 'broken.jpg'), 'wb') as f:
    f.write(b'\xff\xd8\xff\xe0 not really a jpeg')
  with open(os.path.join(root, 'basalt', 'notes.txt'), 'w') as f:
    f.write('field notes')
  os.makedirs(os.path.join(root, '__MACOSX'))
  return root


def test_build_applies_the_folder_rules_and_trains_by_name(tmp_path):
  photos = messy_folder(str(tmp_path / 'photos'))
  report = build_rock_photos.build(photos, str(tmp_path / 'tfds'))
  assert report['classes'] == ['basalt', 'granite'] and report['version'] == '1.0.0'
  assert report['num_photos'] == 24 and sum(report['splits'].values()) == 24
  assert {s['path']: s['reason'] for s in report['skipped']} == {
      'granite/broken.jpg': 'truncated_or_corrupt', 'basalt/notes.txt': 'unsupported_extension'}
  assert len(report['source_sha256']) == 64 and report['duplicates']['duplicate_groups'] >= 1
  builder = tfds.builder('rock_photos', data_dir=str(tmp_path / 'tfds'))
  sides = {}
  for split in ('train', 'test'):
    for ex in tfds.as_numpy(builder.as_dataset(split=split)):
      sides[ex['path'].decode()] = (split, ex['group'])
      assert ex['image'].ndim == 3 and ex['image'].shape[-1] == 3
  assert sides['granite/0.png'][0] == sides['granite/copy.png'][0]  # twins on one side
  assert sides['granite/0.png'][1] == sides['granite/copy.png'][1]
  config = tiny_config(data__tfds='rock_photos', data__tfds_data_dir=str(tmp_path / 'tfds'),
                       data__test_split='test', data__val_fraction=0.3)
  ds = datasets.load_dataset(config, str(tmp_path / 'w'))
  assert ds.class_names == ['basalt', 'granite']
  assert len(ds.train) + len(ds.val) == report['splits']['train']
  assert len(ds.test) == report['splits']['test']
  assert ds.train.images.shape[1:] == (16, 16, 3)


def test_a_folder_without_photos_is_refused(tmp_path):
  os.makedirs(tmp_path / 'photos' / 'basalt')
  with open(tmp_path / 'photos' / 'basalt' / 'a.txt', 'w') as f:
    f.write('x')
  with pytest.raises(Exception, match='no usable photo'):
    build_rock_photos.build(str(tmp_path / 'photos'), str(tmp_path / 'tfds'))
