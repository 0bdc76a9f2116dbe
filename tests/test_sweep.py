"""The sweep tool: value parsing, the grid, skipping finished runs, tables and curves; k-fold."""

import csv
import json
import os
import sys

import pytest

from rockjax import configlib, crossval
from helpers import tiny_config

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'scripts'))
import sweep  # noqa: E402


def test_values_are_split_outside_brackets_and_typed_like_the_field():
  assert sweep.split_values('0.1,0.2, 0.4') == ['0.1', '0.2', '0.4']
  assert sweep.split_values('(16,32),(8, 16)') == ['(16,32)', '(8, 16)']
  config = tiny_config()
  axes = sweep.parse_sweeps(config, ['model.dropout=0,0.5', 'model.widths=(4,8),(8,16)',
                                     'augment.preset=flip,crop', 'num_epochs=1,2',
                                     'data.group_duplicates=True,False'])
  assert axes[0] == ('model.dropout', [0.0, 0.5]) and isinstance(axes[0][1][0], float)
  assert axes[1] == ('model.widths', [(4, 8), (8, 16)])
  assert axes[2] == ('augment.preset', ['flip', 'crop'])
  assert axes[3] == ('num_epochs', [1, 2])
  assert axes[4] == ('data.group_duplicates', [True, False])


@pytest.mark.parametrize('spec,message', [
    ('model.dropuot=0.1', "did you mean 'dropout'"),
    ('num_epochs=1.5', 'is a float'),
    ('model.dropout', 'expected key=v1,v2'),
    ('data.group_duplicates=1', 'expected a bool'),
])
def test_bad_sweeps_are_config_errors(spec, message):
  with pytest.raises(configlib.ConfigError, match=message):
    sweep.parse_sweeps(tiny_config(), [spec])


def test_invalid_combination_is_refused_before_anything_runs(tmp_path):
  with pytest.raises(configlib.ConfigError, match='config.model.dropout'):
    sweep.sweep(tiny_config(), ['model.dropout=0.1,1.5'], str(tmp_path / 's'))
  assert not os.listdir(tmp_path / 's')


def test_sweep_runs_the_grid_writes_tables_and_skips_finished_runs(tmp_path):
  config = tiny_config(num_epochs=1)
  root = str(tmp_path / 's')
  _, rows = sweep.sweep(config, ['model.dropout=0.0,0.3', 'augment.preset=none,flip'], root)
  assert len(rows) == 4 and all(r['status'] == 'done' for r in rows)
  with open(os.path.join(root, 'summary.csv')) as f:
    table = list(csv.DictReader(f))
  assert [(float(r['model.dropout']), r['augment.preset']) for r in table] == [
      (0.0, 'none'), (0.0, 'flip'), (0.3, 'none'), (0.3, 'flip')]
  for r in table:
    assert 0 <= float(r['best_val_accuracy']) <= 100 and float(r['wall_seconds']) > 0
  md = open(os.path.join(root, 'summary.md')).read()
  assert md.count('\n') == 6 and '| model.dropout | augment.preset |' in md
  assert os.path.getsize(os.path.join(root, 'val_accuracy.png')) > 1000
  _, again = sweep.sweep(config, ['model.dropout=0.0,0.3', 'augment.preset=none,flip'], root)
  assert all(r['status'] == 'done (skipped)' for r in again)
  assert [r['best_val_accuracy'] for r in again] == [r['best_val_accuracy'] for r in rows]


def test_kfold_run_reports_mean_and_std_and_validates_every_image_once(tmp_path):
  config = tiny_config(num_epochs=1, data__kfold=3)
  result = crossval.run_kfold(config, str(tmp_path))
  assert result['num_folds'] == 3 and len(result['folds']) == 3
  accs = [f['best_val_accuracy'] for f in result['folds']]
  assert result['mean_best_val_accuracy'] == pytest.approx(sum(accs) / 3)
  assert result['std_best_val_accuracy'] >= 0
  vals = []
  for f in range(3):
    vals += json.load(open(tmp_path / f'fold_{f}' / 'split.json'))['val']
  assert len(vals) == len(set(vals)) == 4 * 24
  assert json.load(open(tmp_path / 'kfold.json'))['k'] == 3
  again = crossval.run_kfold(config, str(tmp_path))  # finished folds are no-ops
  assert again['mean_best_val_accuracy'] == result['mean_best_val_accuracy']
