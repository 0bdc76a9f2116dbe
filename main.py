"""rockjax command line: train (and, with --mode, evaluate, predict, export) rock classifiers.

    python main.py --config=configs/residual.py
    python main.py --config=configs/residual.py --config.model.dropout=0.1 --workdir=runs/d01

Every config field can be overridden with --config.<key>=<value>. Without --workdir, runs go to
runs/<config name>-<hash of the resolved config>, so rerunning the same command resumes it.
"""

from __future__ import annotations

import hashlib
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # TensorFlow feeds the input pipeline only
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')  # offline: no update check at import

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    'config', None, 'Config file, e.g. configs/residual.py; override fields with --config.<key>=...',
    lock_config=True)
flags.DEFINE_string('workdir', None, 'Output folder for checkpoints, metrics and reports '
                    '(default: runs/<config name>-<config hash>).')
flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'predict', 'export', 'preview'],
                  'train: train (or resume) into --workdir; eval: evaluate its best checkpoint; '
                  'predict: classify --inputs; export: write a TensorFlow SavedModel; preview: '
                  'write a PNG of the configured augmentation.')
flags.DEFINE_list('inputs', [], 'For --mode=predict: image files, folders or globs, '
                  'comma-separated.')
flags.mark_flag_as_required('config')


def default_workdir(config_path: str, config) -> str:
  """runs/<config file stem>-<8 hex digits of the resolved config>: same command, same folder."""
  from rockjax import configlib
  digest = hashlib.sha256(configlib.to_json(config).encode()).hexdigest()[:8]
  stem = os.path.splitext(os.path.basename(config_path))[0]
  return os.path.join('runs', f'{stem}-{digest}')


def run(argv) -> int:
  del argv
  from rockjax import checkpointing, configlib, fileio, folder, logs, train

  logs.quiet_libraries()
  config = FLAGS.config
  workdir = FLAGS.workdir or default_workdir(config_flags.get_config_filename(FLAGS['config']),
                                             config)
  user_errors = (configlib.ConfigError, folder.DataError, checkpointing.NoCheckpointError,
                 train.WorkdirError, train.NonFiniteLossError)
  try:
    configlib.validate(config)
    from rockjax import distributed
    distributed.maybe_initialize(config)
    logging.info('Mode %s, workdir %s', FLAGS.mode, workdir)
    if FLAGS.mode == 'train' and config.data.kfold and config.data.fold < 0:
      from rockjax import crossval
      result = crossval.run_kfold(config, workdir)
      print(f'{result["k"]}-fold: mean best val accuracy '
            f'{100 * result["mean_best_val_accuracy"]:.2f}% +- '
            f'{100 * result["std_best_val_accuracy"]:.2f}% (pooled '
            f'{100 * result["pooled_val_accuracy"]:.2f}%); details in '
            f'{os.path.join(workdir, "kfold.json")}')
    elif FLAGS.mode == 'train':
      summary = train.train_and_evaluate(config, workdir)
      fileio.write_json(os.path.join(workdir, 'summary.json'), summary)
      print(f'best val accuracy {100 * summary["best_val_accuracy"]:.2f}% at epoch '
            f'{summary["best_epoch"]}; outputs in {workdir}')
    elif FLAGS.mode == 'eval':
      from rockjax import evaluation
      report = evaluation.evaluate_workdir(workdir, config.eval)
      print(evaluation.format_report(report))
      print(f'report and plots in {os.path.join(workdir, "eval")}')
    elif FLAGS.mode == 'predict':
      from rockjax import predict
      if not FLAGS.inputs:
        raise folder.DataError('--mode=predict needs --inputs=PATH[,PATH...] (files, folders or '
                               'globs)')
      summary = predict.predict_workdir(workdir, FLAGS.inputs, config.predict)
      print(f'{summary["num_predicted"]} predictions in {summary["predictions"]} '
            f'({summary["num_skipped"]} unreadable file(s) skipped)')
      if 'batch1_p50_ms' in summary:
        print(f'batch-1 latency p50 {summary["batch1_p50_ms"]:.2f} ms, p99 '
              f'{summary["batch1_p99_ms"]:.2f} ms; {summary["throughput_images_per_s"]:.0f} '
              f'images/s at batch {summary["throughput_batch_size"]}')
    elif FLAGS.mode == 'export':
      from rockjax import export
      print(f'SavedModel in {export.export_saved_model(workdir)}')
    elif FLAGS.mode == 'preview':
      from rockjax import preview
      os.makedirs(workdir, exist_ok=True)
      path = preview.write_augmentation_preview(
          config, os.path.join(workdir, f'augment_preview_{config.augment.preset}.png'),
          config.preview.per_class, config.preview.versions)
      print(f'augmentation preview in {path}')
  except user_errors as e:
    logging.error('%s', e)
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, but an unknown --config.<key> is a one-line error that names the key."""
  from rockjax import configlib
  try:
    message = configlib.check_override_keys(argv)
  except configlib.ConfigError as e:
    message = str(e)
  if message:
    print(f'error: {message}', file=sys.stderr)
    sys.exit(2)
  return app.parse_flags_with_usage(argv)


def main(argv):
  sys.exit(run(argv))


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
