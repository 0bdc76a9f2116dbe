"""--mode=eval: reports that match training, other folders, k-fold pooling, test-time flips."""

import csv
import json
import os
import shutil

import ml_collections
import numpy as np
import pytest

from rockjax import errors, schema
from rockjax.serving import evaluation, predictor as inference
from rockjax.training import crossval
from helpers import assert_png, tiny_config, write_image


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
  # The label-issue finder ran on the out-of-fold probabilities.
  with open(os.path.join(workdir, 'eval', 'label_issues.csv')) as f:
    flagged = f.read().splitlines()[1:]
  assert report['label_issues']['count'] == len(flagged)
  val_paths = {p for fold in range(2) for p in json.load(open(os.path.join(
      workdir, f'fold_{fold}', 'split.json')))['val']}
  assert {line.split(',')[0] for line in flagged} <= val_paths
  assert report['label_issues']['method'] == config.eval.label_issues_method
  # Every photo's out-of-fold probabilities, with the fold that predicted it.
  with open(os.path.join(workdir, 'eval', 'probabilities.csv')) as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 4 * 24 and {r['path'] for r in rows} == val_paths
  names = report['class_names']
  assert list(rows[0]) == ['path', 'label', 'predicted'] + [f'p_{c}' for c in names] + ['fold']
  probs = np.array([[float(r[f'p_{c}']) for c in names] for r in rows])
  np.testing.assert_allclose(probs.sum(1), 1, atol=1e-3)
  assert [r['predicted'] for r in rows] == [names[i] for i in probs.argmax(1)]
  assert np.mean([r['predicted'] == r['label'] for r in rows]) == pytest.approx(report['accuracy'])
  assert {r['fold'] for r in rows} == {'0', '1'}


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
  with pytest.raises(errors.NoCheckpointError, match='no fold'):
    evaluation.evaluate_workdir(partial, config.eval)


def test_eval_of_a_kfold_workdir_on_another_folder_asks_for_one_fold(kfold_run):
  config, workdir, _ = kfold_run
  eval_config = config.eval.copy_and_resolve_references()
  eval_config.dir = workdir
  with pytest.raises(errors.DataError, match='pick one fold.*fold_0'):
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


def test_eval_can_switch_test_time_flips_on_for_a_run_trained_without(run, tmp_path):
  config, workdir, summary = run
  eval_config = ml_collections.ConfigDict(config.eval.to_dict())
  eval_config.test_time_flip = 'on'
  flipped = evaluation.evaluate_workdir(workdir, eval_config)
  predictor = inference.load_predictor(workdir).with_test_time_views(flip=True)
  image_set = evaluation.evaluation_set(predictor, workdir, config.eval)
  probs = predictor.probabilities(image_set.images)
  assert flipped['test_time_flip'] is True
  assert flipped['accuracy'] == pytest.approx(np.mean(probs.argmax(1) == image_set.labels))
  eval_config.test_time_flip = 'run'
  plain = evaluation.evaluate_workdir(workdir, eval_config)
  assert plain['test_time_flip'] is False
  assert plain['accuracy'] == pytest.approx(summary['best_val_accuracy'], abs=1e-9)


def test_eval_scores_the_latest_checkpoint_with_rotations_without_touching_the_calibration(
    run, tmp_path):
  config, workdir, summary = run
  calibration_path = os.path.join(workdir, 'calibration.json')

  def calibration_file():  # None until an eval of the best checkpoint has written one
    if os.path.exists(calibration_path):
      with open(calibration_path) as f:
        return f.read()
    return None

  calibration_before = calibration_file()
  eval_config = ml_collections.ConfigDict(config.eval.to_dict())
  eval_config.update(checkpoint='latest', test_time_rotate='on', output_dir=str(tmp_path / 'e'))
  report = evaluation.evaluate_workdir(workdir, eval_config)
  assert report['checkpoint_epoch'] == summary['final_epoch'] == 3
  assert report['checkpoint'] == 'the latest checkpoint' and report['test_time_rotate'] is True
  predictor = inference.load_predictor(workdir, checkpoint='latest').with_test_time_views(
      rotate=True)
  assert predictor.epoch == 3 and predictor.test_time_views == 'rotations (4 views)'
  image_set = evaluation.evaluation_set(predictor, workdir, config.eval)
  probs = predictor.probabilities(image_set.images)
  assert report['accuracy'] == pytest.approx(np.mean(probs.argmax(1) == image_set.labels))
  assert calibration_file() == calibration_before  # predict keeps the best checkpoint's temperature
  with pytest.raises(ValueError, match='checkpoint'):
    inference.load_predictor(workdir, checkpoint='first')


def test_eval_that_cannot_write_its_folder_says_so_and_can_write_elsewhere(run, tmp_path):
  config, workdir, summary = run
  copy = tmp_path / 'run'
  shutil.copytree(workdir, copy)
  shutil.rmtree(copy / 'eval', ignore_errors=True)
  (copy / 'eval').write_text('a file where the eval folder would go')  # as a read-only workdir
  eval_config = ml_collections.ConfigDict(config.eval.to_dict())
  with pytest.raises(errors.WorkdirError, match='cannot write the evaluation .*eval.output_dir'):
    evaluation.evaluate_workdir(str(copy), eval_config)
  eval_config.output_dir = str(tmp_path / 'elsewhere')
  report = evaluation.evaluate_workdir(str(copy), eval_config)
  assert report['accuracy'] == pytest.approx(summary['best_val_accuracy'], abs=1e-9)
  assert os.path.exists(tmp_path / 'elsewhere' / 'report.json')


@pytest.fixture(scope='module')
def kfold_with_test(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('kfold_test'))
  config = tiny_config(num_epochs=1, data__kfold=2, data__test_fraction=0.25)
  return config, workdir, crossval.run_kfold(config, workdir)


def test_eval_on_the_test_split_of_one_fold_says_so_and_counts_the_looks(kfold_with_test, caplog):
  config, workdir, _ = kfold_with_test
  eval_config = ml_collections.ConfigDict(config.eval.to_dict())
  eval_config.split = 'test'
  fold = os.path.join(workdir, 'fold_0')
  report = evaluation.evaluate_workdir(fold, eval_config)
  test_paths = json.load(open(os.path.join(fold, 'split.json')))['test']
  assert report['split'] == 'test' and report['num_examples'] == len(test_paths) == 24
  predictor = inference.load_predictor(fold)
  image_set = evaluation.evaluation_set(predictor, fold, eval_config)
  assert image_set.paths == test_paths
  assert report['accuracy'] == pytest.approx(
      np.mean(predictor.probabilities(image_set.images).argmax(1) == image_set.labels))
  assert 'TEST split' in evaluation.format_report(report)
  saved = json.load(open(os.path.join(fold, 'eval_test', 'report.json')))
  assert saved['test_evaluations'] == 1 and 'test split' in saved['data']
  with caplog.at_level('WARNING'):
    again = evaluation.evaluate_workdir(fold, eval_config)
  assert again['test_evaluations'] == 2 and 'evaluated 2 times' in caplog.text


def test_eval_on_the_test_split_of_a_kfold_run_reports_each_fold_and_their_ensemble(
    kfold_with_test):
  config, workdir, _ = kfold_with_test
  eval_config = ml_collections.ConfigDict(config.eval.to_dict())
  eval_config.split = 'test'
  eval_config.output_dir = os.path.join(workdir, 'test_report')
  report = evaluation.evaluate_workdir(workdir, eval_config)
  assert [f['fold'] for f in report['folds']] == ['fold_0', 'fold_1']
  assert report['num_examples'] == 24  # one test split, shared by the folds
  probs, accs = [], []
  for f in range(2):
    predictor = inference.load_predictor(os.path.join(workdir, f'fold_{f}'))
    image_set = evaluation.evaluation_set(predictor, os.path.join(workdir, f'fold_{f}'),
                                          eval_config)
    probs.append(predictor.probabilities(image_set.images))
    accs.append(np.mean(probs[-1].argmax(1) == image_set.labels))
  assert [f['accuracy'] for f in report['folds']] == pytest.approx(accs)
  assert report['accuracy'] == pytest.approx(
      np.mean(np.mean(probs, axis=0).argmax(1) == image_set.labels))
  assert '2 folds averaged (ensemble)' in evaluation.format_report(report)


def test_eval_on_the_test_split_needs_a_run_that_has_one(run):
  config, workdir, _ = run
  eval_config = ml_collections.ConfigDict(config.eval.to_dict())
  eval_config.split = 'test'
  with pytest.raises(errors.DataError, match='no test split.*test_fraction'):
    evaluation.evaluate_workdir(workdir, eval_config)
  with pytest.raises(errors.ConfigError, match='eval.split'):
    schema.validate(tiny_config(eval__split='test', eval__dir='/some/folder'))
  with pytest.raises(errors.ConfigError, match='data.test_fraction'):
    schema.validate(tiny_config(data__test_fraction=1.0))


def test_the_confusion_matrix_title_says_accuracy_data_and_checkpoint():
  from rockjax.serving import evaluation
  report = dict(accuracy=0.78044, data='the saved validation split', num_examples=419,
                checkpoint_epoch=10)
  assert evaluation.matrix_title(report) == ('accuracy 78.04% on the saved validation split '
                                             '(419 images), checkpoint of epoch 10')
  pooled = dict(accuracy=0.5, split='val', num_examples=8, folds=[{}, {}])
  assert evaluation.matrix_title(pooled).endswith("each fold's best checkpoint, out of fold")
