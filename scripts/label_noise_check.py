"""How well the label-issue finder finds labels we broke on purpose.

    python scripts/label_noise_check.py --config=configs/rocks.py --config.data.kfold=5 \
        [--source=FOLDER] [--flip=0.1] [--max_per_class=N] --root=runs/label_noise \
        --out=results/label_noise.json

Copies a clean class-per-folder set (default: the generated set of the config) into
<root>/noisy_data with a seeded `--flip` share of the photos moved to another class (every file is
renamed to a number, so no name tells its class), trains the config as a k-fold run on that copy,
runs `--mode=eval` on it (which writes eval/label_issues.csv), and compares the flagged photos with
the flipped ones: precision (flagged that were flipped), recall (flipped that were flagged), and
both for the top-N of the ranking (N = the number of flips). The top-level figures are those of
`eval.label_issues_method`; `by_method` scores every method of rockjax/serving/label_issues.py on
the same out-of-fold probabilities (eval/probabilities.csv). Rerunning resumes the k-fold run.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import time

import _bootstrap  # noqa: F401  (the repository root on sys.path)
import numpy as np
from absl import app, flags
from ml_collections import config_flags

import rockjax
from rockjax import bench, cli, fileio
from rockjax.bench import studied

FLAGS = flags.FLAGS


def define_flags() -> None:
  config_flags.DEFINE_config_file('config', None, 'Config file (with --config.* overrides).',
                                  lock_config=True)
  flags.DEFINE_string('source', '', 'A clean class-per-folder set; default: the generated set.')
  flags.DEFINE_float('flip', 0.1, 'Share of photos given a wrong label.')
  flags.DEFINE_integer('max_per_class', 0, 'Use at most this many photos per class (0: all).')
  flags.DEFINE_integer('seed', 0, 'Seed of the subsample and of the flips.')
  flags.DEFINE_string('root', 'runs/label_noise', 'Folder for the noisy copy and the run.')
  flags.DEFINE_string('out', '', 'JSON file for the results (default: <root>/label_noise.json).')
  flags.mark_flag_as_required('config')


def noisy_copy(source: str, dest: str, flip: float, max_per_class: int, seed: int) -> dict:
  """Copies `source` into `dest`, flipping a seeded `flip` share of the labels; returns
  {relative path in dest: dict(true=class, given=class)} for every copied photo."""
  names = studied.class_folders(source)
  files = []
  for c, name in enumerate(names):
    found = sorted(f for f in os.listdir(os.path.join(source, name))
                   if f.lower().endswith(studied.IMAGE_EXTENSIONS))
    rng = np.random.default_rng([seed, c])
    if max_per_class and len(found) > max_per_class:
      found = sorted(rng.choice(found, max_per_class, replace=False).tolist())
    files += [(name, f) for f in found]
  rng = np.random.default_rng(seed)
  flipped = set(rng.choice(len(files), int(round(flip * len(files))), replace=False).tolist())
  truth = {}
  if os.path.isdir(dest):
    shutil.rmtree(dest)
  for i, (name, f) in enumerate(files):
    given = name
    if i in flipped:
      others = [n for n in names if n != name]
      given = others[int(rng.integers(len(others)))]
    rel = os.path.join(given, f'{i:06d}{os.path.splitext(f)[1].lower()}')
    os.makedirs(os.path.join(dest, given), exist_ok=True)
    shutil.copyfile(os.path.join(source, name, f), os.path.join(dest, rel))
    truth[rel] = dict(true=name, given=given)
  return truth


def score(flagged: list[str], truth: dict) -> dict:
  """Precision and recall of the flagged paths (in rank order) against the flipped ones."""
  flipped = {p for p, t in truth.items() if t['true'] != t['given']}
  hits = [p in flipped for p in flagged]
  top = hits[:len(flipped)]
  return dict(num_photos=len(truth), num_flipped=len(flipped), num_flagged=len(flagged),
              precision=sum(hits) / max(len(hits), 1), recall=sum(hits) / max(len(flipped), 1),
              precision_at_num_flipped=sum(top) / max(len(top), 1),
              recall_at_num_flipped=sum(top) / max(len(flipped), 1))


def score_methods(probabilities_csv: str, truth: dict) -> dict:
  """score(...) of every label-issue method on the out-of-fold probabilities eval wrote."""
  with open(probabilities_csv) as f:
    rows = [{k: fileio.read_cell(v) for k, v in r.items()} for r in csv.DictReader(f)]
  names = [k[len('p_'):] for k in rows[0] if k.startswith('p_')]
  probs = np.array([[float(r[f'p_{n}']) for n in names] for r in rows])
  labels = np.array([names.index(r['label']) for r in rows])
  return {m: score([rows[i['index']]['path'] for i in studied.find_label_issues(labels, probs, m)],
                   truth)
          for m in studied.LABEL_ISSUE_METHODS}


def main(argv) -> int:
  del argv
  return cli.run_script(check, FLAGS.config)


def check(config) -> int:
  if not config.data.kfold:
    config.data.kfold = 5
  source = FLAGS.source or bench.data_root(config.data)
  root = os.path.abspath(FLAGS.root)
  start = time.time()
  truth_path = os.path.join(root, 'truth.json')
  if os.path.exists(truth_path):  # a rerun resumes on the same copy
    with open(truth_path) as f:
      truth = json.load(f)
  else:
    truth = noisy_copy(source, os.path.join(root, 'noisy_data'), FLAGS.flip, FLAGS.max_per_class,
                       FLAGS.seed)
    fileio.write_json(truth_path, truth)
  config.data.dir = os.path.join(root, 'noisy_data')
  config.data.test_fraction = 0.0
  run_dir = os.path.join(root, 'run')
  kfold = cli.run_training(config, run_dir)
  report = rockjax.evaluate(run_dir, **config.eval.to_dict())
  out_dir = report['output_dir']
  with open(os.path.join(out_dir, 'label_issues.csv')) as f:
    flagged = [fileio.read_cell(row['path']) for row in csv.DictReader(f)]
  result = dict(source=source, flip=FLAGS.flip, k=config.data.kfold,
                image_size=config.data.image_size, seed=FLAGS.seed,
                out_of_fold_accuracy=report['accuracy'],
                mean_final_val_accuracy=kfold['mean_final_val_accuracy'],
                wall_seconds=time.time() - start, method=config.eval.label_issues_method,
                **score(flagged, truth),
                by_method=score_methods(os.path.join(out_dir, 'probabilities.csv'), truth))
  out = FLAGS.out or os.path.join(root, 'label_noise.json')
  fileio.write_json(out, result)
  print(json.dumps(result, indent=2))
  return 0


if __name__ == '__main__':
  define_flags()
  app.run(lambda argv: sys.exit(main(argv)), flags_parser=cli.parse_flags)
