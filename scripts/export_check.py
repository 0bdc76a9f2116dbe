"""Does the exported model score raw photos exactly as `--mode=predict` does? A trained run's
validation photos (from its split.json), read as files by the SavedModel's `files` signature and
by rockjax's predictor; the largest probability difference and the top-1 agreement.

    python scripts/export_check.py --workdir=W [--json=results/export_check.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time

import _bootstrap  # noqa: F401  (the repository root on sys.path)
import numpy as np


def check(workdir: str, out_dir: str, batch_size: int) -> dict:
  import rockjax
  from rockjax.bench import studied
  with open(os.path.join(workdir, 'split.json')) as f:
    split = json.load(f)
  paths = [os.path.join(split['root'], p) for p in split['val']]
  model = rockjax.load(workdir)  # as --mode=predict reads and scores photos
  start = time.perf_counter()
  expected = model.predict(paths).probabilities
  predict_s = time.perf_counter() - start
  rockjax.export(workdir, formats='saved_model', report=False, output_dir=out_dir)
  serve = studied.exported_files_signature(out_dir)
  start = time.perf_counter()
  got = np.concatenate([serve(paths[i:i + batch_size])['probabilities']
                        for i in range(0, len(paths), batch_size)])
  exported_s = time.perf_counter() - start
  agree = got.argmax(1) == expected.argmax(1)
  config = model.predictor.config
  return dict(
      date=datetime.date.today().isoformat(), workdir=workdir, model=config.model.name,
      preprocessing=f'{config.data.image_size} px, {config.data.interpolation}, '
                    f'{config.data.aspect}',
      test_time_flip=bool(config.test_time_flip), photos=len(paths),
      top1_agree=int(agree.sum()), disagreeing=[paths[i] for i in np.flatnonzero(~agree)],
      max_abs_probability_difference=float(np.abs(got - expected).max()),
      seconds=dict(predict_reading_and_scoring=round(predict_s, 1),
                   export_files_signature=round(exported_s, 1)))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--json', default='')
  parser.add_argument('--batch_size', type=int, default=32)
  args = parser.parse_args(argv)
  with tempfile.TemporaryDirectory() as tmp:
    result = check(args.workdir, os.path.join(tmp, 'export'), args.batch_size)
  print(json.dumps(result, indent=2))
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(result, f, indent=2)
  return 0 if result['top1_agree'] == result['photos'] else 1


if __name__ == '__main__':
  from rockjax import cli
  sys.exit(cli.run_script(main))
