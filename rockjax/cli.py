"""The command line, shared by main.py and scripts/sweep.py: flag parsing, the default workdir,
the modes, and the one place where errors a user caused become one line and exit status 2.

Each mode is a function (config, workdir, inputs) -> the text to print; main.py maps `--mode`
names to them.
"""

from __future__ import annotations

import hashlib
import os
import sys

from absl import flags, logging

from rockjax import configlib, fileio, logs, schema
from rockjax.errors import DataError, Interrupted, Terminated, UserError

USER_ERROR_STATUS = 2


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, but a bad --config file, an unknown --config.<key> or a value of the wrong
  type is a one-line error with exit status 2 instead of a traceback or absl's usage dump."""
  try:
    argv = with_run_config(argv)
    configlib.check_arguments(argv)
    return flags.FLAGS(argv)
  except (UserError, flags.Error) as e:
    sys.exit(user_error_status(e))


AFTER_TRAINING = ('eval', 'predict', 'export', 'preview')  # modes that may omit --config


def recipes_dir() -> str:
  """The shipped config files: configs/ beside the package in a checkout, or the copy that
  `pip install .` puts in the package (rockjax/recipes, pyproject.toml)."""
  package = os.path.dirname(os.path.abspath(__file__))
  checkout = os.path.join(os.path.dirname(package), 'configs')
  return checkout if os.path.exists(os.path.join(checkout, 'run.py')) else os.path.join(
      package, 'recipes')


def with_run_config(argv: list[str]) -> list[str]:
  """`argv`, with `--config=configs/run.py:W` added when a mode that comes after training names a
  run with --workdir=W but gives no --config: the run's own config is then the config. A
  --config=configs/NAME.py that is not a file here names the shipped recipe NAME.py (installed
  with `pip install .`, run from any folder)."""
  if {'-h', '--help', '--helpfull', '--helpshort'} & set(argv):
    return argv
  given = configlib.config_file_argument(argv)
  if given is not None:
    path, colon, arg = given.partition(':')
    shipped = os.path.join(recipes_dir(), os.path.basename(path))
    if path and not os.path.exists(path) and os.path.isfile(shipped):
      new = f'{shipped}{colon}{arg}'
      return [f'--config={new}' if a == f'--config={given}' else new if (
          a == given and i and argv[i - 1] == '--config') else a for i, a in enumerate(argv)]
    return argv
  mode = configlib.config_file_argument(argv, 'mode') or 'train'
  workdir = configlib.config_file_argument(argv, 'workdir')
  if mode not in AFTER_TRAINING:  # training names its recipe
    raise UserError(f'--config is required for --mode={mode}, e.g. --config=configs/residual.py')
  if not workdir:
    raise UserError(f'--mode={mode} needs --workdir=RUN (the run to use), or --config')
  return argv[:1] + [f'--config={os.path.join(recipes_dir(), "run.py")}:{workdir}'] + argv[1:]


def config_path() -> str:
  """The --config file as given (without its ':arg' suffix)."""
  from ml_collections import config_flags
  return config_flags.get_config_filename(flags.FLAGS['config'])


def default_workdir(config, prefix: str = '', extra: str = '', stem: str | None = None) -> str:
  """runs/<prefix><stem>-<8 hex digits of the resolved config (and `extra`)>, the stem being the
  --config file's unless given: the same command always lands in the same folder, so rerunning it
  resumes."""
  digest = hashlib.sha256((configlib.to_json(config) + extra).encode()).hexdigest()[:8]
  stem = stem or os.path.splitext(os.path.basename(config_path()))[0]
  return os.path.join('runs', f'{prefix}{stem}-{digest}')


def user_error_status(e: Exception) -> int:
  """Prints a user's error as one line on stderr; the exit status for it."""
  print(f'error: {e}', file=sys.stderr)
  return USER_ERROR_STATUS


def run_script(fn, *args) -> int:
  """A script's body `fn(*args)` (returning its exit status), with library logs quietened and
  a UserError printed as one line (status 2)."""
  logs.quiet_libraries()
  try:
    return fn(*args)
  except UserError as e:
    return user_error_status(e)


def interrupted_status(e: BaseException) -> int:
  """Ctrl-C or SIGTERM as one line on stderr (no traceback); 130 or 143, as shells report them."""
  if isinstance(e, Interrupted):
    print(f'error: {e}', file=sys.stderr)
    return e.status
  terminated = isinstance(e, Terminated)
  print(f'error: {"terminated (SIGTERM)" if terminated else "interrupted"}; rerun the same '
        'command (training resumes from its latest checkpoint)', file=sys.stderr)
  return 143 if terminated else 130


def run_mode(name: str, mode_fn, config, workdir: str, inputs: list[str]) -> int:
  """Runs one mode; a UserError is printed as one line (status 2), Ctrl-C and SIGTERM too (130,
  143); anything else is a bug."""
  logs.quiet_libraries()
  try:
    from rockjax.training import faults
    with faults.signals_as_interrupts():
      schema.validate(config)
      from rockjax.training import runtime
      runtime.maybe_initialize(config)
      logging.info('Mode %s, workdir %s', name, workdir)
      print(mode_fn(config, workdir, inputs))
  except UserError as e:
    return user_error_status(e)
  except (Interrupted, KeyboardInterrupt) as e:
    return interrupted_status(e)
  return 0


def run_training(config, workdir: str) -> dict:
  """Trains one run (summary.json) or, with data.kfold, every fold (kfold.json); the summary."""
  if config.data.kfold and config.data.fold < 0:
    from rockjax.training import crossval
    return crossval.run_kfold(config, workdir)
  import jax
  from rockjax.training import loop
  summary = loop.train_and_evaluate(config, workdir)
  if jax.process_index() == 0:  # one writer per workdir, also with several processes
    fileio.write_json(os.path.join(workdir, 'summary.json'), summary)
  return summary


def train(config, workdir: str, inputs) -> str:
  result = run_training(config, workdir)
  if 'k' in result:
    return (f'{result["k"]}-fold: final-epoch val accuracy '
            f'{100 * result["mean_final_val_accuracy"]:.2f}% +- '
            f'{100 * result["std_final_val_accuracy"]:.2f}% (best epoch, selected on validation: '
            f'{100 * result["mean_best_val_accuracy"]:.2f}% +- '
            f'{100 * result["std_best_val_accuracy"]:.2f}%); details in '
            f'{os.path.join(workdir, "kfold.json")}\n'
            f'next: python main.py --mode=eval --workdir={workdir}  (every fold, pooled)')
  return (f'final-epoch val accuracy {100 * result["final_val_accuracy"]:.2f}% (epoch '
          f'{result["final_epoch"]}); best {100 * result["best_val_accuracy"]:.2f}% at epoch '
          f'{result["best_epoch"]}, selected on validation; outputs in {workdir}\n'
          + next_commands(workdir))


def next_commands(workdir: str) -> str:
  """What a user runs next on a finished run (its own config is then the config)."""
  w = workdir if ' ' not in workdir else f'"{workdir}"'
  return (f'next: python main.py --mode=eval --workdir={w}\n'
          f'      python main.py --mode=predict --workdir={w} --inputs=FOLDER_OF_PHOTOS\n'
          f'      python main.py --mode=export --workdir={w}')


def evaluate(config, workdir: str, inputs) -> str:
  from rockjax.serving import evaluation
  report = evaluation.evaluate_workdir(workdir, config.eval)
  return (f'{evaluation.format_report(report)}\n'
          f'report and plots in {evaluation.output_dir(workdir, config.eval)}')


def predict(config, workdir: str, inputs: list[str]) -> str:
  from rockjax.serving import predict as predicting
  if not inputs:
    raise DataError('--mode=predict needs --inputs=PATH[,PATH...] (files, folders or globs)')
  summary = predicting.predict_workdir(workdir, inputs, config.predict)
  skipped = ', '.join(f'{n} {reason.replace("_", " ")}'
                      for reason, n in summary['skipped_by_reason'].items())
  uncertain = (f', {summary["num_uncertain"]} answered uncertain (under '
               f'{summary["min_confidence"]:g})' if summary.get('min_confidence') else '')
  text = (f'{summary["num_predicted"]} predictions in {summary["predictions"]} '
          f'(skipped {summary["num_skipped"]}{": " + skipped if skipped else ""}{uncertain})')
  if 'batch1_p50_ms' in summary:
    text += (f'\nbatch-1 latency p50 {summary["batch1_p50_ms"]:.2f} ms, p99 '
             f'{summary["batch1_p99_ms"]:.2f} ms; {summary["throughput_images_per_s"]:.0f} '
             f'images/s at batch {summary["throughput_batch_size"]}')
  return text


def export(config, workdir: str, inputs) -> str:
  from rockjax.serving import export as exporting
  out = exporting.export_workdir(workdir, config.export)
  return f'{config.export.formats.replace(",", ", ")} in {out}' + (
      f' (accuracy and latency of each in {os.path.join(out, "report.json")})'
      if config.export.report else '')


def preview(config, workdir: str, inputs) -> str:
  from rockjax.serving import preview as previews
  os.makedirs(workdir, exist_ok=True)
  path = previews.write_augmentation_preview(
      config, os.path.join(workdir, f'augment_preview_{config.augment.preset}.png'),
      config.preview.per_class, config.preview.versions)
  from rockjax.training import monitoring
  monitoring.write_images(workdir, 'preview', 0, {f'preview/{config.augment.preset}': path})
  return f'augmentation preview in {path} (and in TensorBoard\'s Images tab)'


def split(config, workdir: str, inputs) -> str:
  """The split training would use, written into the workdir without training: to look at (sizes,
  duplicate groups, data_report.json) before hours of training, or to share (data.split_from)."""
  from rockjax.training import crossval
  lines = []
  for run_dir, data in crossval.write_splits(config, workdir):
    dup = data.report.get('duplicates', {})
    groups = ('split reused' if dup.get('reused_saved_split') else
              f'{dup["duplicate_groups"]} duplicate groups ({dup["cross_class_groups"]} across '
              'classes)' if 'duplicate_groups' in dup else 'duplicates not grouped')
    test = f', {len(data.test)} test' if data.test is not None else ''
    lines.append(f'{run_dir}: {len(data.train)} training, {len(data.val)} validation{test} '
                 f'images; {groups}')
  return '\n'.join(lines + [f'training with this config and --workdir={workdir} uses this split '
                             f'(another config reuses it with --config.data.split_from={workdir})'])
