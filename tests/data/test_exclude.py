"""data.exclude: listed photos leave training only; the split and the validation images stay."""

import json
import os

import pytest

from rockjax import errors
from rockjax.data import dataset as datasets, exclude
from helpers import tiny_config, write_image


def photo_folder(root, counts):
  for name, n in counts.items():
    for i in range(n):
      write_image(os.path.join(str(root), name, f'{i}.png'), seed=hash((name, i)) % 10000)
  return str(root)


def test_the_list_reads_relative_absolute_commented_and_csv_paths(tmp_path):
  root = str(tmp_path / 'photos')
  listing = tmp_path / 'list.txt'
  listing.write_text(f'# reviewed 2026-11-29\n\nbasalt/1.png\n{root}/granite/2.png\n./marble/0.png\n')
  assert exclude.read_list(str(listing), root) == {'basalt/1.png', 'granite/2.png',
                                                   'marble/0.png'}
  issues = tmp_path / 'label_issues.csv'
  issues.write_text('path,given,suggested\n"odd, name.png",basalt,granite\nbasalt/3.png,a,b\n')
  assert exclude.read_list(str(issues), root) == {'odd, name.png', 'basalt/3.png'}
  from rockjax import fileio  # label_issues.csv as eval writes it: '=x' cells quoted
  fileio.write_csv(str(issues), ['path', 'given', 'suggested'], [['=1+1/2.png', '=1+1', 'b']])
  assert exclude.read_list(str(issues), root) == {'=1+1/2.png'}
  with pytest.raises(errors.ConfigError, match='config.data.exclude: cannot read'):
    exclude.read_list(str(tmp_path / 'missing.txt'), root)


def test_excluded_photos_leave_training_only_and_the_folds_stay_the_same(tmp_path, caplog):
  root = photo_folder(tmp_path / 'photos', {'basalt': 12, 'granite': 10, 'marble': 8})
  config = dict(data__dir=root, data__kfold=3, data__fold=1)
  plain = datasets.load_dataset(tiny_config(**config), str(tmp_path / 'plain'))
  listed = plain.train.paths[:3] + plain.val.paths[:2] + ['basalt/not_there.png']
  (tmp_path / 'list.txt').write_text('\n'.join(listed) + '\n')
  with caplog.at_level('INFO'):
    cleaned = datasets.load_dataset(tiny_config(data__exclude=str(tmp_path / 'list.txt'),
                                                **config), str(tmp_path / 'cleaned'))
  assert cleaned.train.paths == plain.train.paths[3:]
  assert cleaned.val.paths == plain.val.paths  # validation is not cleaned
  assert cleaned.report['exclude'] == dict(file=str(tmp_path / 'list.txt'), listed=6,
                                           excluded_from_training=3, kept_in_val_or_test=2,
                                           not_found=1)
  assert '1 listed photo(s) are not in this data set' in caplog.text
  # split.json holds the whole split (the list is applied on every load), as the plain run's.
  saved = json.load(open(tmp_path / 'cleaned' / 'split.json'))
  assert saved['train'] == plain.train.paths and saved['val'] == plain.val.paths
  resumed = datasets.load_dataset(tiny_config(data__exclude=str(tmp_path / 'list.txt'),
                                              **config), str(tmp_path / 'cleaned'))
  assert resumed.train.paths == cleaned.train.paths


def test_a_list_that_empties_a_class_of_training_images_is_warned_about(tmp_path, caplog):
  root = photo_folder(tmp_path / 'photos', {'basalt': 6, 'granite': 6})
  plain = datasets.load_dataset(tiny_config(data__dir=root), str(tmp_path / 'plain'))
  basalt = [p for p in plain.train.paths if p.startswith('basalt')]
  (tmp_path / 'list.txt').write_text('\n'.join(basalt) + '\n')
  cleaned = datasets.load_dataset(tiny_config(data__dir=root,
                                              data__exclude=str(tmp_path / 'list.txt')))
  assert 0 not in cleaned.train.labels.tolist()
  assert "No training image of class(es) ['basalt']" in caplog.text
