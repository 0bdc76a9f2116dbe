"""`--mode=eval`: the best checkpoint on the saved validation split (or any folder), in full detail.

With `--config.eval.split=test`, on the run's held-out test split instead (data.test_fraction): the
one figure no choice of the run has seen. Its report goes to `<workdir>/eval_test/` and counts how
many times the test split was evaluated (a figure picked after several looks is no longer unbiased).

Writes `<workdir>/eval/report.json` (accuracy; per-class precision, recall, F1, support; the confusion
matrix), `confusion_matrix.png` (counts and row-normalised), `most_confident_errors.png` and
`probabilities.csv` (every image: path, label, predicted class, each class's probability, and on a
k-fold workdir the fold whose model predicted it), for analyses of one's own.

On a k-fold workdir (`fold_0`, `fold_1`, ... inside), each fold's best checkpoint predicts its own
validation split, and the predictions are pooled into one out-of-fold report: every image is
predicted once, by the one model that never trained on it. On the test split, every fold's model
predicts the same test images: the report gives each fold's accuracy and the accuracy of the folds'
averaged probabilities (their ensemble). The out-of-fold report also lists the photos whose label is
probably wrong (rockjax/serving/label_issues.py): `label_issues.csv` and `label_issues.png`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re

import numpy as np
from absl import logging

from rockjax import fileio, plots
from rockjax.data import dataset as datasets, folder
from rockjax.errors import DataError, NoCheckpointError, WorkdirError
from rockjax.serving import calibration, coverage, error_figures, label_issues
from rockjax.serving import predictor as predictors
from rockjax.training import monitoring
from rockjax.serving.reports import classification_report, confusion, format_report  # noqa: F401


TEST_DATA = 'the saved test split (held out of training, early stopping and checkpoint choice)'


def evaluation_set(predictor: predictors.Predictor, workdir: str, eval_config) -> folder.ImageSet:
  """The folder eval.dir (read with the run's preprocessing), or the run's saved val split, or
  with eval.split=test its saved test split."""
  if eval_config.dir:
    return folder.read_folder(os.path.abspath(os.path.expanduser(eval_config.dir)),
                              predictor.read_options, datasets.cache_dir(predictor.config.data),
                              class_names=predictor.class_names)
  if not os.path.exists(os.path.join(workdir, 'split.json')):
    raise DataError(f'{workdir!r} has no split.json; pass --config.eval.dir=FOLDER')
  dataset = datasets.load_dataset(predictor.config, workdir, write=False)
  if eval_config.split != 'test':
    return dataset.val
  if dataset.test is None:
    raise DataError(f'{workdir!r} has no test split (it was split with data.test_fraction=0); '
                    'train a new run with --config.data.test_fraction=0.1, or evaluate its '
                    'validation split (--config.eval.split=val)')
  return dataset.test


def fold_workdirs(workdir: str) -> list[str]:
  """The `fold_<f>` runs inside a k-fold workdir, in fold order; [] for any other workdir."""
  if not os.path.isdir(workdir) or os.path.isdir(os.path.join(workdir, 'checkpoints')):
    return []
  folds = [n for n in os.listdir(workdir)
           if re.fullmatch(r'fold_\d+', n) and os.path.isdir(os.path.join(workdir, n))]
  return [os.path.join(workdir, n) for n in sorted(folds, key=lambda n: int(n[len('fold_'):]))]


def _predict(workdir: str, eval_config):
  predictor = predictors.load_predictor(workdir, checkpoint=eval_config.checkpoint)
  override = {'run': None, 'on': True, 'off': False}
  predictor = predictor.with_test_time_views(override[eval_config.test_time_flip],
                                             override[eval_config.test_time_rotate])
  image_set = evaluation_set(predictor, workdir, eval_config)
  if getattr(image_set, 'streamed', False):  # a streamed run: decode the evaluated split once
    image_set = image_set.in_memory()
  if len(image_set) == 0:
    raise DataError('no images to evaluate')
  return predictor, image_set, predictor.probabilities(image_set.images, eval_config.batch_size)


def output_dir(workdir: str, eval_config) -> str:
  """Where eval writes: eval.output_dir, or <workdir>/eval (<workdir>/eval_test for the test split)."""
  return eval_config.output_dir or os.path.join(
      workdir, 'eval_test' if eval_config.split == 'test' else 'eval')


def count_test_evaluation(out: str, report: dict) -> None:
  """Adds `test_evaluations` (this one included) to a test-split report, warning from the second:
  the test figure is unbiased only if nothing was chosen after looking at it."""
  previous = 0
  try:
    with open(os.path.join(out, 'report.json')) as f:
      previous = int(json.load(f).get('test_evaluations', 0))
  except (OSError, ValueError, TypeError, AttributeError):
    pass
  report['test_evaluations'] = previous + 1
  if previous:
    logging.warning('The test split of this run has now been evaluated %d times (see %s): report '
                    'the first figure, or say that choices were made after seeing it.',
                    previous + 1, out)


def write_probabilities(path: str, image_set: folder.ImageSet, probabilities: np.ndarray,
                        class_names: list[str], folds: np.ndarray | None = None) -> None:
  """One row per image: path, label, predicted class, p(class) for every class[, fold]."""
  header = (['path', 'label', 'predicted'] + [f'p_{c}' for c in class_names]
            + ([] if folds is None else ['fold']))
  fileio.write_csv(path, header, (
      [image_set.paths[i], class_names[image_set.labels[i]], class_names[int(p.argmax())]]
      + [f'{q:.5f}' for q in p] + ([] if folds is None else [int(folds[i])])
      for i, p in enumerate(probabilities)))


def _write(out: str, report: dict, image_set: folder.ImageSet, probabilities: np.ndarray,
           eval_config, extra=None, folds=None) -> np.ndarray:
  """report.json (with the most confident errors added), the confusion matrix and the error grid;
  a folder that cannot be written (a read-only workdir) is one WorkdirError. Returns the indices
  of the most confident errors, most confident first."""
  if eval_config.split == 'test':
    count_test_evaluation(out, report)
  try:
    return _write_files(out, report, image_set, probabilities, eval_config, extra, folds)
  except OSError as e:
    raise WorkdirError(f'cannot write the evaluation to {out!r} ({type(e).__name__}: {e}); pass '
                       '--config.eval.output_dir=FOLDER to write it elsewhere') from e


def _write_files(out: str, report: dict, image_set: folder.ImageSet, probabilities: np.ndarray,
                 eval_config, extra=None, folds=None) -> np.ndarray:
  class_names = report['class_names']
  os.makedirs(out, exist_ok=True)
  report['output_dir'] = os.path.abspath(out)  # where these files are
  write_probabilities(os.path.join(out, 'probabilities.csv'), image_set, probabilities,
                      class_names, folds)
  if extra is not None:  # more files, whose summary goes into report.json
    report.update(extra(out))
  wrong = error_figures.most_confident_errors(image_set, probabilities,
                                             eval_config.num_errors_shown)
  report['most_confident_errors'] = [
      dict(path=image_set.paths[i], true=class_names[image_set.labels[i]],
           predicted=class_names[probabilities[i].argmax()],
           probability=float(probabilities[i].max())) for i in wrong]
  report['coverage'] = coverage.write(out, probabilities, image_set.labels, report.get(
      'calibration', {}).get('temperature'), matrix_title(report))
  fileio.write_json(os.path.join(out, 'report.json'), report)
  plots.confusion_matrix(np.asarray(report['confusion_matrix']), class_names,
                         os.path.join(out, 'confusion_matrix.png'), matrix_title(report))
  if 'calibration' in report:
    rel = report['calibration']['reliability']
    plots.reliability_diagram(rel, os.path.join(out, 'reliability.png'),
                              f'ECE {100 * rel["ece"]:.1f} points; {matrix_title(report)}')
  error_figures.error_grid(image_set, probabilities, wrong, class_names,
             os.path.join(out, 'most_confident_errors.png'))
  if report.get('workdir') and report.get('checkpoint_epoch'):  # one run: TensorBoard images too
    monitoring.write_images(report['workdir'], 'eval', report['checkpoint_epoch'], {
        f'eval/{n}': os.path.join(out, f'{n}.png') for n in (
            'confusion_matrix', 'reliability', 'accuracy_coverage', 'most_confident_errors')})
  return wrong


def matrix_title(report: dict) -> str:
  """'accuracy 78.04% on the saved validation split (419 images), checkpoint of epoch 10'."""
  where = report.get('data', report.get('split', ''))
  epoch = report.get('checkpoint_epoch')
  return (f'accuracy {100 * report["accuracy"]:.2f}% on {where} ({report["num_examples"]} '
          f'images)' + (f', checkpoint of epoch {epoch}' if epoch else ', each fold\'s best '
                        'checkpoint, out of fold' if report.get('folds') else ''))


def evaluate_workdir(workdir: str, eval_config) -> dict:
  """Evaluates a run's best checkpoint, or pools the folds of a k-fold workdir (evaluate_kfold)."""
  if fold_workdirs(workdir):
    return evaluate_kfold(workdir, eval_config)
  predictor, image_set, probabilities = _predict(workdir, eval_config)
  report = classification_report(image_set.labels, probabilities, predictor.class_names)
  report.update(workdir=os.path.abspath(workdir), checkpoint_epoch=predictor.epoch,
                checkpoint=predictor.checkpoint,
                split='folder' if eval_config.dir else eval_config.split,
                data=eval_config.dir or (TEST_DATA if eval_config.split == 'test' else
                                         'saved validation split'),
                **predictor.test_time_settings)
  out = output_dir(workdir, eval_config)
  report['calibration'] = calibration.measure(
      image_set.labels, probabilities, fit=not eval_config.dir and eval_config.split == 'val')
  wrong = _write(out, report, image_set, probabilities, eval_config)
  error_figures.explain_errors(predictor, image_set, probabilities, wrong, predictor.class_names,
                               os.path.join(out, 'most_confident_errors_explained.png'))
  if 'temperature' in report['calibration'] and eval_config.checkpoint == 'best':
    calibration.save(workdir, report['calibration'], predictor.epoch)  # what predict will use
  logging.info('Evaluated %s (epoch %d) on %s%s: accuracy %.2f%% on %d images.',
               predictor.checkpoint, predictor.epoch, report['data'],
               f' averaged over {predictor.test_time_views}' if predictor.test_time_views else '',
               100 * report['accuracy'], report['num_examples'])
  return report


def _fold_predictions(workdir: str, eval_config):
  """(folds, skipped, class names): each finished fold's predictor, image set and probabilities."""
  folds, skipped, class_names = [], [], None
  for fold_dir in fold_workdirs(workdir):
    try:
      predictor, image_set, probs = _predict(fold_dir, eval_config)
    except NoCheckpointError as e:
      logging.warning('Skipping %s: %s', fold_dir, e)
      skipped.append(os.path.basename(fold_dir))
      continue
    if class_names is not None and predictor.class_names != class_names:
      raise DataError(f'{fold_dir} has classes {predictor.class_names}, the folds before it '
                      f'{class_names}: these folds are not one k-fold run')
    class_names = predictor.class_names
    folds.append((fold_dir, predictor, image_set, probs))
  if not folds:
    raise NoCheckpointError(f'no fold of the k-fold workdir {workdir!r} has a best checkpoint yet '
                            f'({", ".join(skipped)})')
  return folds, skipped, class_names


def _fold_row(fold_dir, predictor, image_set, probs) -> dict:
  return dict(fold=os.path.basename(fold_dir), checkpoint_epoch=predictor.epoch,
              accuracy=float(np.mean(probs.argmax(-1) == image_set.labels)),
              num_examples=len(image_set), **predictor.test_time_settings)


def evaluate_kfold(workdir: str, eval_config) -> dict:
  """Each finished fold's best checkpoint on its own validation split, pooled out of fold (or, with
  eval.split=test, every fold and their ensemble on the common test split).

  Folds without a checkpoint yet (a k-fold run still going) are skipped and listed in the report.
  """
  if eval_config.dir:
    raise DataError(
        f'{workdir!r} is a k-fold workdir: each fold is evaluated on its own held-out images. To '
        f'evaluate on another folder, pick one fold, e.g. --workdir={os.path.join(workdir, "fold_0")}')
  folds, skipped, class_names = _fold_predictions(workdir, eval_config)
  rows = [_fold_row(*f) for f in folds]
  accs = np.array([r['accuracy'] for r in rows])
  spread = dict(folds=rows, folds_skipped=skipped, mean_fold_accuracy=float(accs.mean()),
                std_fold_accuracy=float(accs.std(ddof=1)) if len(accs) > 1 else 0.0)
  if eval_config.split == 'test':
    image_set = folds[0][2]
    if any(f[2].paths != image_set.paths for f in folds):
      raise DataError(f'the folds of {workdir!r} hold different test splits: they are not one '
                      'k-fold run')
    probabilities = np.mean([f[3] for f in folds], axis=0)  # the folds' ensemble
    report = classification_report(image_set.labels, probabilities, class_names)
    report.update(workdir=os.path.abspath(workdir), split='test',
                  data=TEST_DATA + f'; accuracy of the {len(folds)} folds\' averaged '
                  'probabilities', **spread)
    _write(output_dir(workdir, eval_config), report, image_set, probabilities, eval_config)
    logging.info('Evaluated %d fold(s) on the test split: ensemble accuracy %.2f%% on %d images; '
                 'per fold %s.', len(folds), 100 * report['accuracy'], report['num_examples'],
                 ', '.join(f'{100 * a:.2f}%' for a in accs))
    return report
  sets = [f[2] for f in folds]
  pooled = dataclasses.replace(sets[0], images=np.concatenate([s.images for s in sets]),
                               labels=np.concatenate([s.labels for s in sets]),
                               paths=[p for s in sets for p in s.paths])
  if len(set(pooled.paths)) != len(pooled.paths):  # the folds of one run share one data folder
    logging.warning('Some images are in more than one fold\'s validation split: the pooled report '
                    'counts them once per fold.')
  probabilities = np.concatenate([f[3] for f in folds])
  report = classification_report(pooled.labels, probabilities, class_names)
  report.update(workdir=os.path.abspath(workdir), split='val',
                data='each fold\'s saved validation split, pooled', **spread)
  fold_of = np.repeat([int(r['fold'][len('fold_'):]) for r in rows], [len(s) for s in sets])
  _write(output_dir(workdir, eval_config), report, pooled, probabilities, eval_config,
         extra=lambda out: dict(label_issues=label_issues.write(
             out, pooled, probabilities, class_names, fold_of,
             eval_config.num_label_issues_shown, eval_config.label_issues_method)), folds=fold_of)
  logging.info('Evaluated %d fold(s) out of fold: pooled accuracy %.2f%% on %d images; per fold '
               '%s%s.', len(folds), 100 * report['accuracy'], report['num_examples'],
               ', '.join(f'{100 * a:.2f}%' for a in accs),
               f' ({len(skipped)} without a checkpoint skipped)' if skipped else '')
  logging.info('Label issues: %d photo(s) whose out-of-fold prediction confidently disagrees with '
               'their label, ranked in %s (review label_issues.png; exclude with data.exclude).',
               report['label_issues']['count'],
               os.path.join(output_dir(workdir, eval_config), 'label_issues.csv'))
  return report
