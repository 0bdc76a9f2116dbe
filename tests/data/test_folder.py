"""Reading a class-per-folder photo collection: formats, bad files, report, cache, class errors."""

import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from rockjax.data import folder, imageio
from rockjax.errors import DataError
from rockjax.training import loop
from helpers import SHARED_DATA, write_image

OPTIONS = folder.ReadOptions(image_size=16)


def messy_folder(root):
  """A folder like users have: mixed formats, nested folders, and files that are not images."""
  root = str(root)
  w = lambda rel, **kw: write_image(os.path.join(root, rel), seed=hash(rel) % 1000, **kw)
  w('basalt/a.png')
  w('basalt/b.jpg', fmt='JPEG')
  w('basalt/c_gray.png', mode='L')
  w('basalt/D_UPPER.JPG', fmt='JPEG')
  w('basalt/nested/deeper/e.png')
  w('granite/f_rgba.png', mode='RGBA')
  w('granite/g_palette.png', mode='P')
  w('granite/h.TIF', fmt='TIFF')
  Image.fromarray(np.full((20, 20), 30000, np.uint16)).save(os.path.join(root, 'granite/i16.png'))
  w('marble/j.webp', fmt='WEBP')
  w('marble/k.bmp', fmt='BMP')
  good = w('marble/l.jpg', fmt='JPEG', size=(64, 64))
  with open(os.path.join(root, 'marble/cut.jpg'), 'wb') as f:
    f.write(open(good, 'rb').read()[:250])
  open(os.path.join(root, 'marble/zero.png'), 'wb').close()
  with open(os.path.join(root, 'marble/readme.jpg'), 'w') as f:
    f.write('not an image')
  with open(os.path.join(root, 'marble/notes.txt'), 'w') as f:
    f.write('field notes')
  open(os.path.join(root, 'marble/.DS_Store'), 'wb').close()
  return root


def test_reads_every_usable_image_as_rgb_uint8(tmp_path):
  root = messy_folder(tmp_path / 'photos')
  s = folder.read_folder(root, OPTIONS, cache_dir=None)
  assert s.class_names == ['basalt', 'granite', 'marble']
  assert s.images.shape == (12, 16, 16, 3) and s.images.dtype == np.uint8
  assert s.report['class_counts'] == {'basalt': 5, 'granite': 4, 'marble': 3}
  assert os.path.join('basalt', 'nested', 'deeper', 'e.png') in s.paths
  assert os.path.join('basalt', 'D_UPPER.JPG') in s.paths
  for path, label in zip(s.paths, s.labels):
    assert s.class_names[label] == path.split(os.sep)[0]


def test_report_lists_every_skipped_file_with_its_reason(tmp_path):
  root = messy_folder(tmp_path / 'photos')
  report = folder.read_folder(root, OPTIONS).report
  reasons = {e['path']: e['reason'] for e in report['skipped']}
  assert reasons == {
      os.path.join('marble', 'cut.jpg'): imageio.TRUNCATED,
      os.path.join('marble', 'zero.png'): imageio.EMPTY_FILE,
      os.path.join('marble', 'readme.jpg'): imageio.NOT_AN_IMAGE,
      os.path.join('marble', 'notes.txt'): imageio.UNSUPPORTED_EXTENSION,
  }
  assert report['skipped_by_reason'] == {imageio.TRUNCATED: 1, imageio.EMPTY_FILE: 1,
                                         imageio.NOT_AN_IMAGE: 1,
                                         imageio.UNSUPPORTED_EXTENSION: 1}
  assert report['skipped_by_class'] == {'marble': 4}
  json.dumps(report)  # it is written to data_report.json


def test_second_read_hits_the_cache_and_returns_the_same_arrays(tmp_path):
  root = messy_folder(tmp_path / 'photos')
  cache = str(tmp_path / 'cache')
  first = folder.read_folder(root, OPTIONS, cache)
  second = folder.read_folder(root, OPTIONS, cache)
  assert (first.report['cache_hit'], second.report['cache_hit']) == (False, True)
  np.testing.assert_array_equal(first.images, second.images)
  np.testing.assert_array_equal(first.labels, second.labels)
  assert first.paths == second.paths
  assert second.report['skipped'] == first.report['skipped']


@pytest.mark.parametrize('change', ['add', 'remove', 'touch', 'resize_setting'])
def test_changes_invalidate_the_cache(tmp_path, change):
  root = messy_folder(tmp_path / 'photos')
  cache = str(tmp_path / 'cache')
  folder.read_folder(root, OPTIONS, cache)
  options = OPTIONS
  if change == 'add':
    write_image(os.path.join(root, 'granite', 'new.png'), seed=99)
  elif change == 'remove':
    os.remove(os.path.join(root, 'basalt', 'a.png'))
  elif change == 'touch':
    path = os.path.join(root, 'basalt', 'a.png')
    write_image(path, seed=123)  # same name, new content
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
  else:
    options = folder.ReadOptions(image_size=16, interpolation='bilinear')
  again = folder.read_folder(root, options, cache)
  assert not again.report['cache_hit']


def test_damaged_cache_is_ignored(tmp_path):
  root = messy_folder(tmp_path / 'photos')
  cache = str(tmp_path / 'cache')
  first = folder.read_folder(root, OPTIONS, cache)
  with open(first.report['cache_path'], 'wb') as f:
    f.write(b'garbage')
  again = folder.read_folder(root, OPTIONS, cache)
  assert not again.report['cache_hit']
  np.testing.assert_array_equal(first.images, again.images)


def test_class_with_no_usable_image_is_an_error_naming_it(tmp_path):
  root = messy_folder(tmp_path / 'photos')
  os.makedirs(os.path.join(root, 'slate'))
  with open(os.path.join(root, 'slate', 'broken.jpg'), 'w') as f:
    f.write('nope')
  with pytest.raises(DataError, match=r"\['slate'\].*allow_empty_classes"):
    folder.read_folder(root, OPTIONS)


def test_empty_class_is_dropped_when_allowed(tmp_path):
  root = messy_folder(tmp_path / 'photos')
  os.makedirs(os.path.join(root, 'aaa_empty'))
  s = folder.read_folder(root, folder.ReadOptions(image_size=16, allow_empty_classes=True))
  assert s.class_names == ['basalt', 'granite', 'marble']
  assert s.report['dropped_classes'] == ['aaa_empty']
  for path, label in zip(s.paths, s.labels):
    assert s.class_names[label] == path.split(os.sep)[0]


def test_missing_empty_or_flat_folders_are_clear_errors(tmp_path):
  with pytest.raises(DataError, match='does not exist'):
    folder.read_folder(str(tmp_path / 'nope'), OPTIONS)
  (tmp_path / 'empty').mkdir()
  with pytest.raises(DataError, match='has no class sub-folders'):
    folder.read_folder(str(tmp_path / 'empty'), OPTIONS)
  write_image(str(tmp_path / 'flat' / 'x.png'))
  with pytest.raises(DataError, match='has no class sub-folders'):
    folder.read_folder(str(tmp_path / 'flat'), OPTIONS)
  (tmp_path / 'afile').write_text('x')
  with pytest.raises(DataError, match='is not a folder'):
    folder.read_folder(str(tmp_path / 'afile'), OPTIONS)


def test_validation_folder_with_an_unknown_class_is_refused(tmp_path):
  write_image(str(tmp_path / 'val' / 'gneiss' / 'x.png'))
  with pytest.raises(DataError, match=r"\['gneiss'\].*not among the training classes"):
    folder.read_folder(str(tmp_path / 'val'), OPTIONS, class_names=['basalt', 'granite'])


def test_one_epoch_of_training_on_a_messy_folder(tmp_path):
  from helpers import tiny_config
  root = messy_folder(tmp_path / 'photos')
  for name in ('basalt', 'granite', 'marble'):  # enough images for a split and a batch
    for i in range(10):
      write_image(os.path.join(root, name, 'more', f'{i}.png'), seed=hash((name, i)) % 999)
  config = tiny_config(num_epochs=1, batch_size=16, data__dir=root, augment__preset='flip')
  summary = loop.train_and_evaluate(config, str(tmp_path / 'w'))
  assert summary['epochs'] == 1 and summary['class_names'] == ['basalt', 'granite', 'marble']
  report = json.load(open(tmp_path / 'w' / 'data_report.json'))
  assert report['num_skipped'] == 4


SHARED = SHARED_DATA


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED, 'rock7')),
                    reason='../shared/data/rock7 (real photos beside the checkout) is not here')
def test_reads_a_real_photo_set(tmp_path):
  root = os.path.join(SHARED, 'rock7')
  s = folder.read_folder(root, folder.ReadOptions(image_size=16), str(tmp_path / 'cache'))
  assert len(s.class_names) >= 2 and len(s) > 1000
  assert s.images.dtype == np.uint8 and s.images.shape[1:] == (16, 16, 3)
  assert set(np.unique(s.labels)) == set(range(len(s.class_names)))
  for entry in s.report['skipped']:
    assert entry['reason'] in (imageio.EMPTY_FILE, imageio.NOT_AN_IMAGE, imageio.TRUNCATED,
                               imageio.UNREADABLE, imageio.UNSUPPORTED_EXTENSION)
  again = folder.read_folder(root, folder.ReadOptions(image_size=16), str(tmp_path / 'cache'))
  assert again.report['cache_hit'] and again.report['read_seconds'] < s.report['read_seconds']


def test_hidden_and_system_folders_are_not_classes_and_are_named(tmp_path, caplog):
  root = tmp_path / 'photos'
  for name in ('granite', 'marble', '__MACOSX', '.git', '__MACOSX/granite'):
    write_image(str(root / name / 'x.png'))
  write_image(str(root / 'granite' / '.thumbnails' / 'y.png'))
  image_set = folder.read_folder(str(root), folder.ReadOptions(image_size=8))
  assert image_set.class_names == ['granite', 'marble']
  assert image_set.paths == [os.path.join('granite', 'x.png'), os.path.join('marble', 'x.png')]
  assert "ignoring folder(s) ['.git', '__MACOSX']" in caplog.text
