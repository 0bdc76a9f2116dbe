"""A decoded set trains like its folder: same images, same duplicate groups, same folds; a file
with other preprocessing, or a damaged one, is a clear error."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import rockjax
from rockjax import errors
from rockjax.data import dataset as datasets, folder
from helpers import ROOT, tiny_config, write_image


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('photos'))
  for name in ('basalt', 'granite', 'marble'):
    for i in range(9):
      write_image(os.path.join(root, name, f'{i}.png'), seed=hash((name, i)) % 10000)
  # Copies: one byte-identical pair across classes, one within a class.
  shutil.copy(os.path.join(root, 'basalt', '0.png'), os.path.join(root, 'granite', 'copy.png'))
  shutil.copy(os.path.join(root, 'marble', '3.png'), os.path.join(root, 'marble', 'copy.png'))
  return root


def test_a_decoded_set_gives_the_folders_images_groups_and_folds(photos, tmp_path):
  out = str(tmp_path / 'set.npz')
  config = tiny_config(data__dir=photos, data__kfold=3)
  rockjax.decode_folder(config, out)
  for fold in range(3):
    config.data.fold = fold
    from_folder = datasets.load_dataset(config)
    from_file = datasets.load_dataset(tiny_config(data__dir=out, data__kfold=3, data__fold=fold))
    assert from_file.class_names == from_folder.class_names
    for a, b in ((from_file.train, from_folder.train), (from_file.val, from_folder.val)):
      assert a.paths == b.paths
      np.testing.assert_array_equal(a.images, b.images)
      np.testing.assert_array_equal(a.labels, b.labels)
    assert from_file.report['duplicates']['duplicate_groups'] == 2
    assert from_file.report['duplicates'] == from_folder.report['duplicates']


def test_the_log_names_the_decoded_file_not_a_folder_read_now(photos, tmp_path, monkeypatch):
  out = str(tmp_path / 'set.npz')
  rockjax.decode_folder(tiny_config(data__dir=photos), out)
  lines = []
  monkeypatch.setattr(folder.logging, 'info', lambda msg, *args: lines.append(msg % args))
  datasets.load_dataset(tiny_config(data__dir=out))
  line = next(line for line in lines if line.startswith('data: 29 images'))
  assert f'decoded set {out} (made from {photos}' in line and 'cache' not in line


def test_a_decoded_set_with_other_preprocessing_is_refused(photos, tmp_path):
  out = str(tmp_path / 'set.npz')
  rockjax.decode_folder(tiny_config(data__dir=photos), out)
  with pytest.raises(errors.DataError, match=r"data.image_size 16 there, 24 here"):
    datasets.load_dataset(tiny_config(data__dir=out, data__image_size=24))


def test_a_damaged_or_missing_decoded_set_is_a_data_error(tmp_path):
  bad = tmp_path / 'bad.npz'
  bad.write_bytes(b'PK\x03\x04 not really a zip')
  with pytest.raises(errors.DataError, match='not a readable rockjax decoded set'):
    datasets.load_dataset(tiny_config(data__dir=str(bad)))
  with pytest.raises(errors.DataError, match='does not exist'):
    datasets.load_dataset(tiny_config(data__dir=str(tmp_path / 'missing.npz')))


def test_decoding_needs_a_folder_and_an_npz_name(photos, tmp_path):
  with pytest.raises(errors.DataError, match='must end in .npz'):
    rockjax.decode_folder(tiny_config(data__dir=photos), str(tmp_path / 'set.zip'))
  with pytest.raises(errors.DataError, match='name the photo folder'):
    rockjax.decode_folder(tiny_config(), str(tmp_path / 'set.npz'))


def test_the_script_decodes_a_folder_from_the_command_line(photos, tmp_path):
  out = tmp_path / 'cli.npz'
  result = subprocess.run(
      [sys.executable, 'scripts/decode_folder.py', '--config=tests/tiny_cli_config.py',
       f'--config.data.dir={photos}', f'--out={out}'], cwd=ROOT, capture_output=True, text=True,
      timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
  assert result.returncode == 0, result.stderr[-2000:]
  assert '29 images of 3 classes' in result.stdout and out.exists()
  bad = subprocess.run(
      [sys.executable, 'scripts/decode_folder.py', '--config=tests/tiny_cli_config.py',
       f'--config.data.dir={photos}', f'--out={tmp_path / "x.zip"}'], cwd=ROOT,
      capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
  assert bad.returncode == 2 and 'must end in .npz' in bad.stderr
