"""The `rockjax` command (and `python main.py`): its flags, the modes by name, and the entry point.

    rockjax --config=configs/residual.py --config.model.dropout=0.1 --workdir=runs/d01
    rockjax --mode=export --workdir=runs/d01  # after training: the run's own config

Every config field can be overridden with --config.<key>=<value>. Without --workdir, runs go to
runs/<config name>-<hash of the resolved config>, so rerunning the same command resumes it.
The logic lives in rockjax/cli.py and the packages; this module only names the modes.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from rockjax import cli  # first rockjax import: process-wide defaults, before JAX starts

MODES = {
    'train': cli.train,  # train (or resume) into --workdir
    'eval': cli.evaluate,  # evaluate its best checkpoint
    'predict': cli.predict,  # classify --inputs
    'export': cli.export,  # write the SavedModel and the other export.formats
    'preview': cli.preview,  # write a PNG of the configured augmentation
    'split': cli.split,  # write the split (k-fold: every fold's) into --workdir, without training
}

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    'config', None, 'Config file, e.g. configs/residual.py; override fields with --config.<key>=...',
    lock_config=True)
flags.DEFINE_string('workdir', None, 'Output folder for checkpoints, metrics and reports '
                    '(default: runs/<config name>-<config hash>). eval, predict, export and '
                    'preview without --config use the config saved in it.')
flags.DEFINE_enum('mode', 'train', list(MODES), 'What to do with --workdir: ' + ', '.join(MODES))
flags.DEFINE_list('inputs', [], 'For --mode=predict: image files, folders or globs, '
                  'comma-separated; @FILE reads paths from FILE, one per line.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  workdir = FLAGS.workdir or cli.default_workdir(FLAGS.config)
  sys.exit(cli.run_mode(FLAGS.mode, MODES[FLAGS.mode], FLAGS.config, workdir, FLAGS.inputs))


def run():
  """The console script's entry point (pyproject.toml: `rockjax`)."""
  app.run(main, flags_parser=cli.parse_flags)
