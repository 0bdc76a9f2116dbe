"""Photos of classes a model never saw: how many does "not sure" catch?

Evaluates a finished run on its validation split (rockjax.evaluate: the accuracy-coverage
thresholds, on the probabilities predict gives), takes the threshold that keeps --coverage of the
run's own photos answered, and predicts photos from another folder (classes the model was not
trained on, e.g. CIFAR-10 test photos against a rock model): the share of them whose top probability
falls under that threshold is the share `--config.predict.min_confidence` would answer "uncertain".

    python scripts/unseen_check.py --workdir=runs/W --unseen=../shared/data/cifar10/test \
        --per_class=100 --json=results/unseen_check.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

import _bootstrap  # noqa: F401  (the repository root on sys.path)
import numpy as np

import rockjax
from rockjax import bench
from rockjax.bench import studied


def unseen_photos(root: str, per_class: int, seed: int = 0) -> list[str]:
  """Up to per_class photos of each class folder under root (sorted, then a seeded sample)."""
  rng = np.random.default_rng(seed)
  paths = []
  for name in sorted(os.listdir(root)):
    sub = os.path.join(root, name)
    if not os.path.isdir(sub):
      continue
    files = sorted(os.path.join(sub, f) for f in os.listdir(sub)
                   if f.lower().endswith(studied.IMAGE_EXTENSIONS))
    take = rng.permutation(len(files))[:per_class]
    paths += [files[i] for i in sorted(take)]
  return paths


def check(workdir: str, unseen: list[str], coverage: float, batch_size: int = 64) -> dict:
  report = rockjax.evaluate(workdir)
  row = min((r for r in report['coverage']['at'] if r['coverage'] >= coverage - 1e-9),
            key=lambda r: r['coverage'])
  model = rockjax.load(workdir)
  confidence = model.predict(unseen, batch_size).confidence
  rejected = confidence < row['threshold']
  return dict(workdir=os.path.abspath(workdir), coverage_asked=coverage,
              threshold=row['threshold'], own_photos_answered=row['coverage'],
              own_accuracy_answered=row['accuracy'], own_accuracy_all=report['accuracy'],
              unseen_photos=len(unseen), unseen_rejected=int(rejected.sum()),
              unseen_rejected_share=float(rejected.mean()),
              unseen_confidence_median=float(np.median(confidence)),
              probabilities=report['coverage']['probabilities'])


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--workdir', required=True, help='a finished run (not a k-fold root)')
  parser.add_argument('--unseen', required=True, help='a folder of class folders the run never saw')
  parser.add_argument('--per_class', type=int, default=100)
  parser.add_argument('--coverage', type=float, default=0.95)
  parser.add_argument('--json', default='')
  args = parser.parse_args()
  result = check(args.workdir, unseen_photos(args.unseen, args.per_class), args.coverage)
  result.update(date=datetime.date.today().isoformat(), unseen=os.path.abspath(args.unseen))
  print(json.dumps(result, indent=2))
  if args.json:
    bench.write_json(args.json, result)
  return 0


if __name__ == '__main__':
  sys.exit(main())
