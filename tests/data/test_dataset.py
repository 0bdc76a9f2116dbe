"""From config.data to train/val sets: generated default, user folder, explicit split, saved split."""

import json
import os

import numpy as np
import pytest

from rockjax import errors
from rockjax.data import dataset as datasets
from helpers import tiny_config, write_image


def photo_folder(root, counts=None):
  counts = counts or {'basalt': 12, 'granite': 8, 'marble': 4}
  for name, n in counts.items():
    for i in range(n):
      write_image(os.path.join(str(root), name, f'{i}.png'), seed=hash((name, i)) % 10000)
  return str(root)


def test_default_is_the_generated_set(tmp_path):
  config = tiny_config()
  ds = datasets.load_dataset(config, str(tmp_path))
  assert ds.class_names == ['basalt', 'granite', 'marble', 'sandstone']
  assert len(ds.train) + len(ds.val) == 4 * 24
  assert ds.train.images.shape[1:] == (16, 16, 3)


def test_user_folder_gets_a_stratified_split_saved_in_the_workdir(tmp_path):
  root = photo_folder(tmp_path / 'photos')
  config = tiny_config(data__dir=root)
  ds = datasets.load_dataset(config, str(tmp_path / 'w'))
  assert np.bincount(ds.val.labels).tolist() == [3, 2, 1]
  split = json.load(open(tmp_path / 'w' / 'split.json'))
  assert split['method'] == 'stratified' and sorted(split['val']) == sorted(ds.val.paths)
  assert json.load(open(tmp_path / 'w' / 'class_names.json')) == ['basalt', 'granite', 'marble']
  report = json.load(open(tmp_path / 'w' / 'data_report.json'))
  assert report['num_images'] == 24


def test_split_is_deterministic_and_depends_on_the_seed(tmp_path):
  root = photo_folder(tmp_path / 'photos')
  a = datasets.load_dataset(tiny_config(data__dir=root))
  b = datasets.load_dataset(tiny_config(data__dir=root))
  c = datasets.load_dataset(tiny_config(data__dir=root, seed=7))
  assert a.val.paths == b.val.paths
  assert a.val.paths != c.val.paths


def test_saved_split_is_reused_even_when_files_are_added(tmp_path):
  root = photo_folder(tmp_path / 'photos')
  workdir = str(tmp_path / 'w')
  first = datasets.load_dataset(tiny_config(data__dir=root), workdir)
  write_image(os.path.join(root, 'marble', 'late_arrival.png'), seed=5)
  second = datasets.load_dataset(tiny_config(data__dir=root), workdir)
  assert second.val.paths == first.val.paths
  assert second.train.paths == first.train.paths


def test_split_from_reuses_another_runs_folds_whatever_the_image_size(tmp_path):
  root = photo_folder(tmp_path / 'photos', {'basalt': 10, 'granite': 10})
  source = tmp_path / 'at16'
  for fold in range(2):  # a 2-fold run at 16 px, as crossval lays it out
    datasets.load_dataset(tiny_config(data__dir=root, data__kfold=2, data__fold=fold),
                      str(source / f'fold_{fold}'))
  for fold in range(2):  # the same folds at 32 px with another seed, which alone would differ
    config = tiny_config(data__dir=root, data__kfold=2, data__fold=fold, data__image_size=32,
                         seed=5, data__split_from=str(source))
    ds = datasets.load_dataset(config, str(tmp_path / 'at32' / f'fold_{fold}'))
    original = json.load(open(source / f'fold_{fold}' / 'split.json'))
    assert sorted(ds.val.paths) == sorted(original['val'])
    assert ds.train.images.shape[1:] == (32, 32, 3)
    copied = json.load(open(tmp_path / 'at32' / f'fold_{fold}' / 'split.json'))
    assert copied['method'].startswith('from ') and copied['val'] == original['val']
  unseeded = datasets.load_dataset(tiny_config(data__dir=root, data__kfold=2, data__fold=0, seed=5))
  assert sorted(unseeded.val.paths) != sorted(
      json.load(open(source / 'fold_0' / 'split.json'))['val'])


def test_split_from_a_run_without_a_split_is_a_config_error(tmp_path):
  root = photo_folder(tmp_path / 'photos')
  with pytest.raises(errors.ConfigError, match='config.data.split_from'):
    datasets.load_dataset(tiny_config(data__dir=root, data__split_from=str(tmp_path / 'nothing')))


def test_explicit_train_and_val_folders_are_the_split(tmp_path):
  photo_folder(tmp_path / 'photos' / 'train')
  photo_folder(tmp_path / 'photos' / 'test', {'basalt': 2, 'granite': 1, 'marble': 1})
  ds = datasets.load_dataset(tiny_config(data__dir=str(tmp_path / 'photos')), str(tmp_path / 'w'))
  assert (len(ds.train), len(ds.val)) == (24, 4)
  assert ds.class_names == ['basalt', 'granite', 'marble']
  split = json.load(open(tmp_path / 'w' / 'split.json'))
  assert split['method'] == 'folders'


def test_val_folder_missing_a_class_keeps_the_training_labels(tmp_path):
  photo_folder(tmp_path / 'photos' / 'train')
  photo_folder(tmp_path / 'photos' / 'val', {'granite': 2, 'marble': 1})
  ds = datasets.load_dataset(tiny_config(data__dir=str(tmp_path / 'photos')))
  assert ds.class_names == ['basalt', 'granite', 'marble']
  assert sorted(ds.val.labels.tolist()) == [1, 1, 2]


def test_missing_data_dir_names_the_path(tmp_path):
  with pytest.raises(errors.DataError, match='nowhere.*does not exist'):
    datasets.load_dataset(tiny_config(data__dir=str(tmp_path / 'nowhere')))


def test_a_one_class_set_and_a_class_without_validation_images_are_warned_about(tmp_path, caplog):
  one = photo_folder(tmp_path / 'one', {'basalt': 8})
  datasets.load_dataset(tiny_config(data__dir=one, data__group_duplicates=False))
  assert 'single class' in caplog.text
  caplog.clear()
  few = photo_folder(tmp_path / 'few', {'basalt': 12, 'granite': 12, 'marble': 1})
  datasets.load_dataset(tiny_config(data__dir=few, data__group_duplicates=False))
  assert "No validation image of class(es) ['marble']" in caplog.text


def test_test_split_is_carved_first_held_out_of_every_fold_and_saved(tmp_path):
  root = photo_folder(tmp_path / 'photos', {'basalt': 20, 'granite': 15, 'marble': 10})
  tests, vals = [], []
  for fold in range(3):
    config = tiny_config(data__dir=root, data__kfold=3, data__fold=fold, data__test_fraction=0.2)
    ds = datasets.load_dataset(config, str(tmp_path / f'fold_{fold}'))
    assert not set(ds.test.paths) & (set(ds.train.paths) | set(ds.val.paths))
    assert len(ds.train) + len(ds.val) + len(ds.test) == 45
    split = json.load(open(tmp_path / f'fold_{fold}' / 'split.json'))
    assert split['test'] == ds.test.paths and split['test_fraction'] == 0.2
    tests.append(ds.test.paths)
    vals += ds.val.paths
  assert tests[0] == tests[1] == tests[2]  # one test split for the whole k-fold run
  assert np.bincount(ds.test.labels).tolist() == [4, 3, 2]  # stratified
  assert sorted(vals) == sorted(set(vals)) and len(vals) == 45 - 9  # each other image once
  # Reused as saved (resume, evaluation), and kept out of the 'new files' of the folder.
  again = datasets.load_dataset(tiny_config(data__dir=root, data__kfold=3, data__fold=2,
                                            data__test_fraction=0.2), str(tmp_path / 'fold_2'))
  assert again.test.paths == tests[2] and again.val.paths == ds.val.paths


def test_without_test_fraction_the_split_is_as_before(tmp_path):
  root = photo_folder(tmp_path / 'photos')
  ds = datasets.load_dataset(tiny_config(data__dir=root), str(tmp_path / 'w'))
  assert ds.test is None and 'test' not in json.load(open(tmp_path / 'w' / 'split.json'))


def test_test_folder_beside_train_and_val_is_the_test_split(tmp_path):
  for part, n in (('train', 6), ('val', 2), ('test', 3)):
    photo_folder(tmp_path / 'photos' / part, {'basalt': n, 'granite': n})
  ds = datasets.load_dataset(tiny_config(data__dir=str(tmp_path / 'photos')), str(tmp_path / 'w'))
  assert (len(ds.train), len(ds.val), len(ds.test)) == (12, 4, 6)
  # train/ and test/ alone: test/ is the validation folder, as before.
  only = tmp_path / 'two'
  for part in ('train', 'test'):
    photo_folder(only / part, {'basalt': 4, 'granite': 4})
  ds = datasets.load_dataset(tiny_config(data__dir=str(only)))
  assert ds.test is None and len(ds.val) == 8
  # With no test/ folder, test_fraction carves the test split off train/.
  ds = datasets.load_dataset(tiny_config(data__dir=str(only), data__test_fraction=0.25))
  assert (len(ds.train), len(ds.val), len(ds.test)) == (6, 8, 2)


def test_a_saved_split_without_test_split_is_reused_as_is(tmp_path, caplog):
  root = photo_folder(tmp_path / 'photos')
  first = datasets.load_dataset(tiny_config(data__dir=root), str(tmp_path / 'w'))
  with caplog.at_level('WARNING'):
    reused = datasets.load_dataset(tiny_config(data__dir=root, data__test_fraction=0.2,
                                               data__split_from=str(tmp_path / 'w')))
  assert reused.test is None and reused.val.paths == first.val.paths
  assert 'no test split' in caplog.text


def test_more_folds_than_images_is_refused_before_any_fold_trains(tmp_path):
  """4 classes of 24 generated images in 100 stratified folds: 76 folds would get no image. The
  first fold's load says so (not the 25th, after 24 folds trained), and writes nothing."""
  config = tiny_config(data__kfold=100, data__fold=0)
  with pytest.raises(errors.DataError, match=r'100-fold cross-validation of 96 images in 96 '
                                             r'duplicate groups leaves 76 fold\(s\) without a '
                                             r'training or validation image \(folds \[24, 25, .* '
                                             r'\.\.\.\); .* the smallest class has 24: '
                                             r'lower data.kfold'):
    datasets.load_dataset(config, str(tmp_path / 'w'))
  assert not os.path.exists(tmp_path / 'w')
  ds = datasets.load_dataset(tiny_config(data__kfold=24, data__fold=23))  # one image per class
  assert len(ds.val) == 4


def test_a_renamed_class_folder_is_refused_not_relabelled(tmp_path):
  """Resume used to rewrite class_names.json to the new list: every label after the renamed class
  shifted, and the run went on training basalt photos as label 0 of another list."""
  root = photo_folder(tmp_path / 'photos')
  workdir = str(tmp_path / 'w')
  datasets.load_dataset(tiny_config(data__dir=root), workdir)
  saved = (tmp_path / 'w' / 'class_names.json').read_text()
  os.rename(os.path.join(root, 'basalt'), os.path.join(root, 'zeolite'))
  for write in (True, False):  # training's resume, and eval (which never writes)
    with pytest.raises(errors.DataError) as caught:
      datasets.load_dataset(tiny_config(data__dir=root), workdir, write=write)
    message = str(caught.value)
    assert "['granite', 'marble', 'zeolite']" in message
    assert "['basalt', 'granite', 'marble']" in message and 'init_from' in message
    assert '\n' not in message
  assert (tmp_path / 'w' / 'class_names.json').read_text() == saved
  datasets.load_dataset(tiny_config(data__dir=root), str(tmp_path / 'fresh'))  # a new workdir is fine


def test_files_gone_from_a_saved_split_are_told_apart_from_unreadable_ones(tmp_path, caplog):
  root = photo_folder(tmp_path / 'photos')
  workdir = str(tmp_path / 'w')
  first = datasets.load_dataset(tiny_config(data__dir=root), workdir)
  gone, broken = first.train.paths[:2], first.train.paths[2:3]
  for p in gone:
    os.remove(os.path.join(root, p))
  with open(os.path.join(root, broken[0]), 'wb') as f:
    f.write(b'not an image any more')
  with caplog.at_level('WARNING'):
    second = datasets.load_dataset(tiny_config(data__dir=root), workdir)
  assert len(second.train) == len(first.train) - 3
  assert '2 training file(s) of the saved split are no longer in the folder' in caplog.text
  assert '1 training file(s) of the saved split are no longer readable' in caplog.text
