"""From config.data to train/val sets: generated default, user folder, explicit split, saved split."""

import json
import os

import numpy as np
import pytest

from rockjax import data, folder
from helpers import tiny_config, write_image


def photo_folder(root, counts=None):
  counts = counts or {'basalt': 12, 'granite': 8, 'marble': 4}
  for name, n in counts.items():
    for i in range(n):
      write_image(os.path.join(str(root), name, f'{i}.png'), seed=hash((name, i)) % 10000)
  return str(root)


def test_default_is_the_generated_set(tmp_path):
  config = tiny_config()
  ds = data.load_dataset(config, str(tmp_path))
  assert ds.class_names == ['basalt', 'granite', 'marble', 'sandstone']
  assert len(ds.train) + len(ds.val) == 4 * 24
  assert ds.train.images.shape[1:] == (16, 16, 3)


def test_user_folder_gets_a_stratified_split_saved_in_the_workdir(tmp_path):
  root = photo_folder(tmp_path / 'photos')
  config = tiny_config(data__dir=root)
  ds = data.load_dataset(config, str(tmp_path / 'w'))
  assert np.bincount(ds.val.labels).tolist() == [3, 2, 1]
  split = json.load(open(tmp_path / 'w' / 'split.json'))
  assert split['method'] == 'stratified' and sorted(split['val']) == sorted(ds.val.paths)
  assert json.load(open(tmp_path / 'w' / 'class_names.json')) == ['basalt', 'granite', 'marble']
  report = json.load(open(tmp_path / 'w' / 'data_report.json'))
  assert report['num_images'] == 24


def test_split_is_deterministic_and_depends_on_the_seed(tmp_path):
  root = photo_folder(tmp_path / 'photos')
  a = data.load_dataset(tiny_config(data__dir=root))
  b = data.load_dataset(tiny_config(data__dir=root))
  c = data.load_dataset(tiny_config(data__dir=root, seed=7))
  assert a.val.paths == b.val.paths
  assert a.val.paths != c.val.paths


def test_saved_split_is_reused_even_when_files_are_added(tmp_path):
  root = photo_folder(tmp_path / 'photos')
  workdir = str(tmp_path / 'w')
  first = data.load_dataset(tiny_config(data__dir=root), workdir)
  write_image(os.path.join(root, 'marble', 'late_arrival.png'), seed=5)
  second = data.load_dataset(tiny_config(data__dir=root), workdir)
  assert second.val.paths == first.val.paths
  assert second.train.paths == first.train.paths


def test_explicit_train_and_val_folders_are_the_split(tmp_path):
  photo_folder(tmp_path / 'photos' / 'train')
  photo_folder(tmp_path / 'photos' / 'test', {'basalt': 2, 'granite': 1, 'marble': 1})
  ds = data.load_dataset(tiny_config(data__dir=str(tmp_path / 'photos')), str(tmp_path / 'w'))
  assert (len(ds.train), len(ds.val)) == (24, 4)
  assert ds.class_names == ['basalt', 'granite', 'marble']
  split = json.load(open(tmp_path / 'w' / 'split.json'))
  assert split['method'] == 'folders'


def test_val_folder_missing_a_class_keeps_the_training_labels(tmp_path):
  photo_folder(tmp_path / 'photos' / 'train')
  photo_folder(tmp_path / 'photos' / 'val', {'granite': 2, 'marble': 1})
  ds = data.load_dataset(tiny_config(data__dir=str(tmp_path / 'photos')))
  assert ds.class_names == ['basalt', 'granite', 'marble']
  assert sorted(ds.val.labels.tolist()) == [1, 1, 2]


def test_missing_data_dir_names_the_path(tmp_path):
  with pytest.raises(folder.DataError, match='nowhere.*does not exist'):
    data.load_dataset(tiny_config(data__dir=str(tmp_path / 'nowhere')))
