"""K-fold cross-validation: every image validated once, mean +- std, finished folds skipped, and
only process 0 writes the k-fold workdir."""

import json
import os

import jax
import numpy as np
import pytest

from rockjax.data import dataset as datasets
from rockjax.training import crossval, feeding, loop, optim, runtime
from rockjax.training import workdir as workdirs
from helpers import comparable_records, tiny_config


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
  # --mode=split writes the same folds without training (what data.split_from then shares).
  alone = tmp_path / 'split_only'
  written = crossval.write_splits(config, str(alone))
  assert [d for d, _ in written] == [str(alone / f'fold_{f}') for f in range(3)]
  for f, (_, data) in enumerate(written):
    trained = json.load(open(tmp_path / f'fold_{f}' / 'split.json'))
    split = json.load(open(alone / f'fold_{f}' / 'split.json'))
    assert (split['train'], split['val']) == (trained['train'], trained['val'])
    assert sorted(data.val.paths) == sorted(trained['val'])
  assert not list(alone.glob('fold_*/checkpoints')) and not list(alone.glob('fold_*/metrics*'))


def test_a_split_written_alone_is_kept_by_training_with_its_config_and_remade_for_another(
    tmp_path):
  config = tiny_config(data__kfold=2)
  crossval.write_splits(config, str(tmp_path))
  fold_1 = tmp_path / 'fold_1'
  other = crossval.fold_config(tiny_config(data__kfold=2, seed=7), 1)
  workdirs.prepare_workdir(str(fold_1), other)  # what training under another seed does first
  assert not (fold_1 / 'split.json').exists(), 'a split made under another seed is not reused'
  crossval.write_splits(config, str(tmp_path))
  before = (fold_1 / 'split.json').read_text()
  workdirs.prepare_workdir(str(fold_1), crossval.fold_config(config, 1))  # the same config
  assert (fold_1 / 'split.json').read_text() == before
  (single,) = crossval.write_splits(tiny_config(), str(tmp_path / 'one'))
  assert single[0] == str(tmp_path / 'one') and (tmp_path / 'one' / 'split.json').exists()


def fake_fold(config, workdir):
  return dict(best_val_accuracy=0.5 + 0.1 * config.data.fold, best_epoch=1, epochs=1,
              final_val_accuracy=0.4 + 0.1 * config.data.fold, elapsed_seconds=1.0, num_val=10,
              num_test=0)


@pytest.mark.parametrize('process_index', [0, 1])
def test_only_process_0_writes_the_kfold_workdir(tmp_path, monkeypatch, process_index):
  monkeypatch.setattr(jax, 'process_index', lambda: process_index)
  monkeypatch.setattr(loop, 'train_and_evaluate', fake_fold)
  workdir = tmp_path / 'k'
  written = crossval.write_splits(tiny_config(data__kfold=2), str(tmp_path / 'split'))
  assert (len(written), (tmp_path / 'split').exists()) == ((2, True) if process_index == 0 else
                                                           (0, False))
  result = crossval.run_kfold(tiny_config(data__kfold=2), str(workdir))
  assert result['mean_best_val_accuracy'] == pytest.approx(0.55)
  assert result['mean_final_val_accuracy'] == pytest.approx(0.45)
  assert result['mean_best_minus_final'] == pytest.approx(0.1)
  written = sorted(os.listdir(workdir)) if workdir.exists() else []
  if process_index == 0:
    assert {'config.json', 'environment.json', 'kfold.json'} <= set(written)
  else:
    assert written == []


def test_device_resident_training_sets_have_one_shape_in_every_fold():
  """Stratified folds of 25 photos per class differ in size; padded, every fold puts the same
  data and epoch-order shapes on the devices, so all folds share compiled programs."""
  sizes, shapes = set(), set()
  for fold in range(3):
    config = tiny_config(data__kfold=3, data__fold=fold, data__synthetic__num_per_class=25,
                         data__where='device', batch_size=16)
    ds = datasets.load_dataset(config)
    images, labels = feeding.resident_training_set(ds.train, len(ds.val), kfold=3)
    n = len(ds.train)
    np.testing.assert_array_equal(images[:n], ds.train.images)
    np.testing.assert_array_equal(labels[:n], ds.train.labels)
    assert not images[n:].any() and len(images) == len(labels) == 100
    feed = feeding.DeviceFeed(config, runtime.make_runtime(config), ds,
                              optim.learning_rate_schedule(config, 4))
    sizes.add((n, feed.num_steps))
    shapes.add((feed.train_data['image'].shape, feed.order_columns))
  assert len(sizes) > 1 and {steps for _, steps in sizes} == {4}  # e.g. 64 and 68 images
  assert len(shapes) == 1 and shapes.pop()[1] == 6 * 16  # order columns: 100 // 16 = 6 steps
  ds = datasets.load_dataset(tiny_config())  # one split: nothing to share, nothing padded
  assert len(feeding.resident_training_set(ds.train, len(ds.val), kfold=0)[0]) == len(ds.train)


def test_a_padded_fold_trains_as_on_the_host_path(tmp_path):
  """The padding rows are never gathered: the device path's fold gives the host path's metrics."""
  config = tiny_config(num_epochs=1, data__kfold=3, data__fold=2,
                       data__synthetic__num_per_class=25)
  host, device = config.copy_and_resolve_references(), config.copy_and_resolve_references()
  device.data.where = 'device'
  crossval.run_kfold(host, str(tmp_path / 'host'))
  crossval.run_kfold(device, str(tmp_path / 'device'))
  assert comparable_records(tmp_path / 'device' / 'fold_2') == comparable_records(
      tmp_path / 'host' / 'fold_2')


def test_folds_use_a_compilation_cache_in_the_workdir_unless_one_is_configured(tmp_path):
  configured = jax.config.jax_compilation_cache_dir
  assert configured  # tests/conftest.py sets one for the session
  crossval.use_compilation_cache(str(tmp_path / 'a'))
  assert jax.config.jax_compilation_cache_dir == configured
  try:
    jax.config.update('jax_compilation_cache_dir', None)
    crossval.use_compilation_cache(str(tmp_path / 'b'))
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / 'b' / 'compile_cache')
  finally:
    jax.config.update('jax_compilation_cache_dir', configured)
