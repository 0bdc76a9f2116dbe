"""After training: eval reports and plots, predictions, the SavedModel export, previews, monitors."""

import csv
import json
import os
import shutil

import jax
import ml_collections
import numpy as np
import pytest
from PIL import Image

from rockjax import (checkpointing, crossval, evaluation, export, folder, inference, monitoring,
                     plots, predict, preview, train)
from helpers import tiny_config, write_image
from test_config import run_main


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('run'))
  config = tiny_config(num_epochs=3, predict__latency_runs=20, predict__batch_size=16)
  summary = train.train_and_evaluate(config, workdir)
  return config, workdir, summary


def assert_png(path):
  assert os.path.exists(path), path
  with Image.open(path) as img:
    img.verify()
    assert img.format == 'PNG'


def test_training_writes_curves_and_tensorboard_events(run):
  _, workdir, _ = run
  assert_png(os.path.join(workdir, 'curves.png'))
  events = [f for f in os.listdir(os.path.join(workdir, 'tensorboard')) if 'tfevents' in f]
  assert events
  env = json.load(open(os.path.join(workdir, 'environment.json')))
  assert env[-1]['libraries']['jax'] and env[-1]['libraries']['flax']


def test_eval_matches_the_training_loops_best_accuracy(run):
  config, workdir, summary = run
  written = {name: open(os.path.join(workdir, name)).read()
             for name in ('data_report.json', 'split.json', 'class_names.json')}
  report = evaluation.evaluate_workdir(workdir, config.eval)
  for name, text in written.items():  # evaluation reads the run's files, never rewrites them
    assert open(os.path.join(workdir, name)).read() == text, name
  assert report['accuracy'] == pytest.approx(summary['best_val_accuracy'], abs=1e-9)
  assert report['checkpoint_epoch'] == summary['best_epoch']
  assert report['num_examples'] == sum(m['support'] for m in report['per_class'].values())
  saved = json.load(open(os.path.join(workdir, 'eval', 'report.json')))
  assert saved['accuracy'] == report['accuracy']
  assert_png(os.path.join(workdir, 'eval', 'confusion_matrix.png'))
  if report['accuracy'] < 1.0:
    assert_png(os.path.join(workdir, 'eval', 'most_confident_errors.png'))
    probs = [e['probability'] for e in report['most_confident_errors']]
    assert probs == sorted(probs, reverse=True)


def test_eval_on_another_folder(run, tmp_path):
  config, workdir, _ = run
  for i, name in enumerate(['basalt', 'granite']):
    write_image(str(tmp_path / 'other' / name / 'x.png'), seed=i)
  config = tiny_config()
  config.eval.dir = str(tmp_path / 'other')
  report = evaluation.evaluate_workdir(workdir, config.eval)
  assert report['num_examples'] == 2
  assert report['per_class']['marble']['support'] == 0


@pytest.fixture(scope='module')
def kfold_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('kfold'))
  config = tiny_config(num_epochs=1, data__kfold=2)
  return config, workdir, crossval.run_kfold(config, workdir)


def test_eval_of_a_kfold_workdir_pools_every_fold_out_of_fold(kfold_run):
  config, workdir, result = kfold_run
  report = evaluation.evaluate_workdir(workdir, config.eval)
  assert report['num_examples'] == 4 * 24  # every image once, by the fold that held it out
  assert report['accuracy'] == pytest.approx(result['pooled_val_accuracy'], abs=1e-9)
  assert [f['accuracy'] for f in report['folds']] == pytest.approx(
      [f['best_val_accuracy'] for f in result['folds']], abs=1e-9)
  per_fold = [evaluation.evaluate_workdir(os.path.join(workdir, f'fold_{f}'), config.eval)
              for f in range(2)]
  np.testing.assert_array_equal(report['confusion_matrix'],
                                np.sum([r['confusion_matrix'] for r in per_fold], axis=0))
  assert json.load(open(os.path.join(workdir, 'eval', 'report.json')))['folds_skipped'] == []
  assert_png(os.path.join(workdir, 'eval', 'confusion_matrix.png'))
  assert '2 folds pooled out of fold' in evaluation.format_report(report)


def test_eval_of_an_unfinished_kfold_run_skips_folds_without_a_checkpoint(kfold_run, tmp_path):
  config, workdir, _ = kfold_run
  partial = str(tmp_path / 'partial')
  shutil.copytree(workdir, partial)
  shutil.rmtree(os.path.join(partial, 'fold_1', 'checkpoints'))
  report = evaluation.evaluate_workdir(partial, config.eval)
  assert report['folds_skipped'] == ['fold_1'] and [f['fold'] for f in report['folds']] == ['fold_0']
  assert report['num_examples'] == len(json.load(open(os.path.join(partial, 'fold_0',
                                                                     'split.json')))['val'])
  assert 'skipped (no checkpoint yet): fold_1' in evaluation.format_report(report)
  shutil.rmtree(os.path.join(partial, 'fold_0', 'checkpoints'))
  with pytest.raises(checkpointing.NoCheckpointError, match='no fold'):
    evaluation.evaluate_workdir(partial, config.eval)


def test_eval_of_a_kfold_workdir_on_another_folder_asks_for_one_fold(kfold_run):
  config, workdir, _ = kfold_run
  eval_config = config.eval.copy_and_resolve_references()
  eval_config.dir = workdir
  with pytest.raises(folder.DataError, match='pick one fold.*fold_0'):
    evaluation.evaluate_workdir(workdir, eval_config)


def test_classification_report_on_known_numbers():
  labels = np.array([0, 0, 0, 1, 1, 2])
  predicted = np.array([0, 0, 1, 1, 1, 0])
  probs = np.eye(3)[predicted]
  r = evaluation.classification_report(labels, probs, ['a', 'b', 'c'])
  assert r['accuracy'] == pytest.approx(4 / 6)
  assert r['confusion_matrix'] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
  assert r['per_class']['a'] == dict(precision=pytest.approx(2 / 3), recall=pytest.approx(2 / 3),
                                     f1=pytest.approx(2 / 3), support=3)
  assert r['per_class']['b']['precision'] == pytest.approx(2 / 3)
  assert r['per_class']['b']['recall'] == 1.0
  assert r['per_class']['c'] == dict(precision=0.0, recall=0.0, f1=0.0, support=1)
  assert 'macro avg' in evaluation.format_report(r)


def test_predict_skips_the_corrupt_file_and_writes_a_row_per_good_file(run, tmp_path):
  config, workdir, _ = run
  inputs = tmp_path / 'new'
  good = [write_image(str(inputs / f'rock{i}.jpg'), fmt='JPEG', seed=i) for i in range(3)]
  good.append(write_image(str(inputs / 'sub' / 'gray.png'), mode='L', seed=9))
  (inputs / 'broken.jpg').write_bytes(b'\xff\xd8\xff garbage')
  summary = predict.predict_workdir(workdir, [str(inputs)], config.predict)
  assert (summary['num_predicted'], summary['num_skipped']) == (4, 1)
  assert summary['skipped'][0]['path'].endswith('broken.jpg')
  assert summary['batch1_p50_ms'] > 0 and summary['batch1_p99_ms'] >= summary['batch1_p50_ms']
  with open(os.path.join(workdir, 'predictions.csv')) as f:
    rows = list(csv.DictReader(f))
  assert sorted(r['file'] for r in rows) == sorted(os.path.abspath(p) for p in good)
  class_names = inference.load_class_names(workdir)
  for r in rows:
    p = np.array([float(r[f'p_{c}']) for c in class_names])
    assert p.sum() == pytest.approx(1.0, abs=1e-4)
    assert r['predicted_class'] == class_names[int(p.argmax())]


def test_predict_accepts_globs_and_files(run, tmp_path):
  config, workdir, _ = run
  a = write_image(str(tmp_path / 'a.png'))
  write_image(str(tmp_path / 'b.png'), seed=1)
  paths = predict.expand_inputs([str(tmp_path / '*.png'), a], ('.png',))
  assert paths == sorted({os.path.abspath(a), str(tmp_path / 'b.png')})


def test_inputs_that_match_nothing_are_an_error(run, tmp_path):
  config, workdir, _ = run
  with pytest.raises(predict.NoInputsError, match='matched no image'):
    predict.predict_workdir(workdir, [str(tmp_path / 'nothing*.jpg')], config.predict)


def test_workdir_without_checkpoints_is_a_clear_error(run, tmp_path):
  config, workdir, _ = run
  with pytest.raises(checkpointing.NoCheckpointError, match='holds no training run'):
    evaluation.evaluate_workdir(str(tmp_path), config.eval)
  # A run that was set up but never reached a checkpoint.
  partial = tmp_path / 'partial'
  partial.mkdir()
  for name in ('config.json', 'class_names.json'):
    shutil.copy(os.path.join(workdir, name), partial / name)
  with pytest.raises(checkpointing.NoCheckpointError, match='no best checkpoint'):
    inference.load_predictor(str(partial))


def test_export_round_trip_matches_jax(run, tmp_path):
  _, workdir, _ = run
  out = export.export_saved_model(workdir, str(tmp_path / 'export'))
  serve, meta = export.load_saved_model(out)
  predictor = inference.load_predictor(workdir)
  assert meta['class_names'] == predictor.class_names and meta['image_size'] == 16
  images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
  expected = predictor.probabilities(images)
  for batch in (images, images[:1]):  # any batch size
    got = serve(batch)
    np.testing.assert_allclose(got, expected[:len(batch)], atol=1e-5)


def test_preview_grid_is_written(tmp_path):
  config = tiny_config(augment__preset='crop')
  path = preview.write_augmentation_preview(config, str(tmp_path / 'p.png'), per_class=1,
                                            versions=3)
  assert_png(path)
  with Image.open(path) as img:
    assert img.size[0] > img.size[1] > 100  # 4 rows of 4 cells


def test_progress_bar_draws_only_on_a_terminal(tmp_path):
  class Tty:
    def __init__(self, tty):
      self.tty, self.text = tty, ''
    def isatty(self):
      return self.tty
    def write(self, s):
      self.text += s
    def flush(self):
      pass
  for tty in (True, False):
    stream = Tty(tty)
    bar = monitoring.ProgressBar(10, 1, 5, stream=stream)
    bar.update(5)
    bar.close()
    assert ('5/10' in stream.text) == tty


def test_overlay_curves_png(tmp_path):
  assert_png(plots.overlay_curves({'a': [(1, 50.0), (2, 60.0)], 'b': [(1, 40.0)]},
                                  str(tmp_path / 'o.png')))


def test_cli_eval_without_a_run_is_a_clean_error(tmp_path):
  result = run_main('--config=configs/residual.py', '--mode=eval', f'--workdir={tmp_path}')
  assert result.returncode == 2
  assert 'holds no training run' in result.stderr and 'Traceback' not in result.stderr


def test_cli_predict_needs_inputs(tmp_path):
  result = run_main('--config=configs/residual.py', '--mode=predict', f'--workdir={tmp_path}')
  assert result.returncode == 2 and '--inputs' in result.stderr


@pytest.fixture(scope='module')
def ema_flip_run(tmp_path_factory):
  """A run that keeps a weight EMA, scores with test-time flips, and trains with mixup/cutmix."""
  workdir = str(tmp_path_factory.mktemp('ema_flip_run'))
  config = tiny_config(num_epochs=3, ema_decay=0.8, test_time_flip=True,
                       augment__mixup_alpha=0.2, augment__cutmix_alpha=1.0)
  summary = train.train_and_evaluate(config, workdir)
  return config, workdir, summary


def test_ema_and_flip_run_evaluates_predicts_and_exports_what_training_selected(ema_flip_run,
                                                                                 tmp_path):
  config, workdir, summary = ema_flip_run
  assert summary['epochs'] == 3 and 0.0 < summary['best_val_accuracy'] <= 1.0
  report = evaluation.evaluate_workdir(workdir, config.eval)
  assert report['accuracy'] == pytest.approx(summary['best_val_accuracy'], abs=1e-9)
  predictor = inference.load_predictor(workdir)
  restored = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True)
  try:
    _, state = inference.abstract_train_state(config, len(predictor.class_names))
    state, _ = restored.restore_best(state)
  finally:
    restored.close()
  for got, want in zip(jax.tree.leaves(predictor.variables['params']),
                       jax.tree.leaves(state.ema_params)):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))  # the EMA weights
  images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
  probs = predictor.probabilities(images)
  np.testing.assert_allclose(probs, predictor.probabilities(images[:, :, ::-1]), atol=1e-5)
  serve, _ = export.load_saved_model(export.export_saved_model(workdir, str(tmp_path / 'x')))
  np.testing.assert_allclose(serve(images), probs, atol=1e-5)  # the export flips too


def test_predictor_gives_the_same_probabilities_in_any_batching(run):
  _, workdir, _ = run
  predictor = inference.load_predictor(workdir)
  images = np.random.default_rng(3).integers(0, 256, (37, 16, 16, 3), dtype=np.uint8)
  whole = predictor.probabilities(images, batch_size=64)
  np.testing.assert_allclose(predictor.probabilities(images, batch_size=16), whole, atol=1e-6)
  np.testing.assert_allclose(predictor.probabilities(images[:1], batch_size=1), whole[:1],
                             atol=1e-6)
  np.testing.assert_allclose(whole.sum(1), 1.0, atol=1e-5)
  assert predictor.probabilities(images[:0]).shape == (0, len(predictor.class_names))
  with pytest.raises(ValueError, match='expected images of shape'):
    predictor.probabilities(images[:, :8])


def test_eval_can_switch_test_time_flips_on_for_a_run_trained_without(run, tmp_path):
  config, workdir, summary = run
  eval_config = ml_collections.ConfigDict(config.eval.to_dict())
  eval_config.test_time_flip = 'on'
  flipped = evaluation.evaluate_workdir(workdir, eval_config)
  predictor = inference.load_predictor(workdir).with_test_time_flip(True)
  image_set = evaluation.evaluation_set(predictor, workdir, '')
  probs = predictor.probabilities(image_set.images)
  assert flipped['test_time_flip'] is True
  assert flipped['accuracy'] == pytest.approx(np.mean(probs.argmax(1) == image_set.labels))
  eval_config.test_time_flip = 'run'
  plain = evaluation.evaluate_workdir(workdir, eval_config)
  assert plain['test_time_flip'] is False
  assert plain['accuracy'] == pytest.approx(summary['best_val_accuracy'], abs=1e-9)
