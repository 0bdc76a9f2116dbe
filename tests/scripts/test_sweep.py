"""The sweep tool: value parsing, the grid, skipping finished runs, tables and curves; k-fold."""

import csv
import json
import os

import pytest

from rockjax import configlib
from helpers import tiny_config
import sweep  # scripts/ (on sys.path: tests/conftest.py)


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
  assert not os.path.exists(tmp_path / 's')  # not even an empty folder is left behind


def test_sweep_runs_the_grid_writes_tables_and_skips_finished_runs(tmp_path, monkeypatch):
  config = tiny_config(num_epochs=1)
  root = str(tmp_path / 's')
  monkeypatch.setattr(sweep, 'SMALL_MULTIPLES_FROM', 4)  # the 4th run draws small multiples
  grids = []
  draw_grid = sweep.plots.curves_grid
  monkeypatch.setattr(sweep.plots, 'curves_grid',
                      lambda *a, **kw: grids.append(kw['notes']) or draw_grid(*a, **kw))
  _, rows = sweep.sweep(config, ['model.dropout=0.0,0.3', 'augment.preset=none,flip'], root)
  assert len(grids) == 1 and list(grids[0].values()) == [
      f'final epoch {r["final_val_accuracy"]:.1f}' for r in rows]  # each panel: its table figure
  assert len(rows) == 4 and all(r['status'] == 'done' for r in rows)
  with open(os.path.join(root, 'summary.csv')) as f:
    table = list(csv.DictReader(f))
  assert [(float(r['model.dropout']), r['augment.preset']) for r in table] == [
      (0.0, 'none'), (0.0, 'flip'), (0.3, 'none'), (0.3, 'flip')]
  for r in table:
    assert 0 <= float(r['best_val_accuracy']) <= 100 and float(r['wall_seconds']) > 0
    assert float(r['final_val_accuracy']) <= float(r['best_val_accuracy'])  # one epoch: equal
  md = open(os.path.join(root, 'summary.md')).read()
  assert md.count('\n') == 6 and '| model.dropout | augment.preset |' in md
  assert 'final-epoch val acc (%) | best-epoch val acc (%, selected on val) |' in md
  assert os.path.getsize(os.path.join(root, 'val_accuracy.png')) > 1000
  _, again = sweep.sweep(config, ['model.dropout=0.0,0.3', 'augment.preset=none,flip'], root)
  assert all(r['status'] == 'done (skipped)' for r in again)
  assert [r['best_val_accuracy'] for r in again] == [r['best_val_accuracy'] for r in rows]



def test_a_panel_note_is_the_runs_final_epoch_figure_not_where_its_mean_curve_ends():
  kfold = dict(final_val_accuracy=46.94, final_std=4.55)
  assert sweep.curve_note(kfold) == 'final epoch 46.9 +- 4.5'
  assert sweep.curve_note(dict(final_val_accuracy=50.0, final_std='')) == 'final epoch 50.0'
  assert sweep.curve_note(dict(final_val_accuracy='', final_std='')) == ''  # failed: no figure


def test_sweep_with_one_fold_trains_it_once_and_then_skips_it(tmp_path):
  config = tiny_config(num_epochs=1, data__kfold=3, data__fold=1)
  root = str(tmp_path / 's')
  _, rows = sweep.sweep(config, ['model.dropout=0.0'], root)
  assert rows[0]['status'] == 'done'
  workdir = os.path.join(root, 'model.dropout-0.0')
  assert json.load(open(os.path.join(workdir, 'summary.json')))['epochs'] == 1  # as main.py does
  _, again = sweep.sweep(config, ['model.dropout=0.0'], root)
  assert again[0]['status'] == 'done (skipped)'
  assert again[0]['best_val_accuracy'] == rows[0]['best_val_accuracy']
