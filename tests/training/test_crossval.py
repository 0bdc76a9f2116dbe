"""K-fold cross-validation: every image validated once, mean +- std, finished folds skipped, and
only process 0 writes the k-fold workdir."""

import json
import os

import jax
import pytest

from rockjax.training import crossval, loop
from helpers import tiny_config


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
  assert [f['num_val'] for f in result['folds']] == [
      len(json.load(open(tmp_path / f'fold_{f}' / 'split.json'))['val']) for f in range(3)]
  saved = json.load(open(tmp_path / 'kfold.json'))
  assert saved['k'] == 3
  # The final epoch's figures beside the best epoch's, in the result and in kfold.json.
  finals = [f['final_val_accuracy'] for f in result['folds']]
  assert saved['mean_final_val_accuracy'] == pytest.approx(sum(finals) / 3)
  assert saved['mean_best_minus_final'] == pytest.approx(sum(accs) / 3 - sum(finals) / 3)
  assert saved['std_final_val_accuracy'] >= 0 and 'pooled_final_val_accuracy' in saved
  again = crossval.run_kfold(config, str(tmp_path))  # finished folds are no-ops
  assert again['mean_best_val_accuracy'] == result['mean_best_val_accuracy']


def fake_fold(config, workdir):
  return dict(best_val_accuracy=0.5 + 0.1 * config.data.fold, best_epoch=1, epochs=1,
              final_val_accuracy=0.4 + 0.1 * config.data.fold, elapsed_seconds=1.0, num_val=10,
              num_test=0)


@pytest.mark.parametrize('process_index', [0, 1])
def test_only_process_0_writes_the_kfold_workdir(tmp_path, monkeypatch, process_index):
  monkeypatch.setattr(jax, 'process_index', lambda: process_index)
  monkeypatch.setattr(loop, 'train_and_evaluate', fake_fold)
  workdir = tmp_path / 'k'
  result = crossval.run_kfold(tiny_config(data__kfold=2), str(workdir))
  assert result['mean_best_val_accuracy'] == pytest.approx(0.55)
  assert result['mean_final_val_accuracy'] == pytest.approx(0.45)
  assert result['mean_best_minus_final'] == pytest.approx(0.1)
  written = sorted(os.listdir(workdir)) if workdir.exists() else []
  if process_index == 0:
    assert {'config.json', 'environment.json', 'kfold.json'} <= set(written)
  else:
    assert written == []
