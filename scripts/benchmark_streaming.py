"""One epoch of a TFDS set streamed (data.in_memory=false) and in memory (true), side by side.

    python scripts/build_rock_photos.py --photos=../shared/data/cifar10/train --data_dir=/tmp/tfds
    python scripts/benchmark_streaming.py --config=configs/residual.py \
        --config.data.tfds=rock_photos --config.data.tfds_data_dir=/tmp/tfds \
        --config.data.val_split=test --out=results/benchmark_streaming.json

For each mode, in its own process (so each peak memory is its own): `main.py` trains
`--epochs` epochs (data.repeats=1), and the script records the epoch's images/s from
metrics.jsonl, the wall time of the whole command (reading or indexing the set included) and the
process's peak resident memory. Then the streaming input pipeline alone (no training: decode,
preprocess, augment, batch) runs one epoch in this process, which bounds what streaming can feed.
Modes alternate `--rounds` times; medians are reported. With `--memory_image_size=S` > 0, each
mode also loads the set at S px in a process of its own (in memory: every image decoded; streamed:
the index, then `--memory_batches` batches streamed) and reports that process's peak memory: the
part of the footprint that grows with the data.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import _bootstrap  # noqa: F401  (the repository root on sys.path)
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from rockjax import bench, cli

FLAGS = flags.FLAGS


def define_flags() -> None:
  config_flags.DEFINE_config_file('config', None, 'Config file (with --config.* overrides).',
                                  lock_config=True)
  flags.DEFINE_integer('epochs', 1, 'Epochs trained per mode.')
  flags.DEFINE_integer('rounds', 1, 'Alternating rounds of (in memory, streamed).')
  flags.DEFINE_string('out', '', 'JSON file for the results.')
  flags.DEFINE_integer('memory_image_size', 0, '> 0: also the peak memory of loading at this size.')
  flags.DEFINE_integer('memory_batches', 300, 'Batches streamed in the memory measurement.')
  flags.DEFINE_string('load_only', '', 'Internal: true|false: load (and stream), print memory.')
  flags.mark_flag_as_required('config')


def overrides(config) -> list[str]:
  """The --config.* flags of the command line this script was given (passed on to main.py)."""
  return [a for a in sys.argv[1:] if a.startswith('--config.')]


def train_once(in_memory: str, epochs: int) -> dict:
  workdir = tempfile.mkdtemp(prefix=f'stream-{in_memory}-')
  cmd = [sys.executable, os.path.join(_bootstrap.ROOT, 'main.py'),
         f'--config={FLAGS["config"].config_filename}', *overrides(FLAGS.config),
         f'--config.data.in_memory={in_memory}', '--config.data.repeats=1',
         f'--config.num_epochs={epochs}', '--config.early_stopping_patience=0',
         f'--workdir={workdir}']
  start = time.perf_counter()
  proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  _, status, usage = os.wait4(proc.pid, 0)
  wall = time.perf_counter() - start
  stderr = proc.stderr.read()
  if status:
    raise SystemExit(f'{" ".join(cmd)} failed:\n{stderr[-3000:]}')
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  return dict(in_memory=in_memory, wall_seconds=round(wall, 1),
              peak_rss_mib=round(usage.ru_maxrss / 1024, 1),
              images_per_s=[None if r['images_per_s'] is None else round(r['images_per_s'], 1)
                            for r in records],
              epoch_seconds=[round(r['epoch_seconds'], 1) for r in records],
              val_accuracy=[r['val_accuracy'] for r in records], workdir=workdir)


def pipeline_alone(config) -> dict:
  """One epoch of the streaming input pipeline with nothing consuming it but a counter."""
  with config.unlocked():
    config.data.in_memory = 'false'
  data = bench.load_dataset(config, None)
  start, count = time.perf_counter(), 0
  for batch in bench.streamed_batches(config, data.train, epoch=1):
    count += batch['label'].size
  seconds = time.perf_counter() - start
  return dict(images=count, seconds=round(seconds, 1), images_per_s=round(count / seconds, 1))


def load_only(config, in_memory: str) -> None:
  """Loads the set (in memory, or indexed and `--memory_batches` batches streamed) and prints this
  process's peak memory as one JSON line."""
  with config.unlocked():
    config.data.in_memory = in_memory
  start = time.perf_counter()
  data = bench.load_dataset(config, None)
  seconds, streamed = time.perf_counter() - start, 0
  if data.streamed:
    for i, batch in enumerate(bench.streamed_batches(config, data.train, epoch=0, augment=False)):
      streamed += batch['label'].size
      if i + 1 == FLAGS.memory_batches:
        break
  print(json.dumps(dict(in_memory=in_memory, image_size=config.data.image_size,
                        load_seconds=round(seconds, 1), images_streamed=streamed,
                        peak_rss_mib=round(resource.getrusage(
                            resource.RUSAGE_SELF).ru_maxrss / 1024, 1))))


def memory_section(size: int) -> list[dict]:
  rows = []
  for mode in ('true', 'false'):
    cmd = [sys.executable, os.path.abspath(__file__), f'--config={FLAGS["config"].config_filename}',
           *overrides(FLAGS.config), f'--config.data.image_size={size}', f'--load_only={mode}',
           f'--memory_batches={FLAGS.memory_batches}']
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows.append(json.loads(out.strip().splitlines()[-1]))
    print(json.dumps(rows[-1]), flush=True)
  return rows


def main(argv) -> None:
  del argv
  config = FLAGS.config
  if FLAGS.load_only:
    return load_only(config, FLAGS.load_only)
  memory = memory_section(FLAGS.memory_image_size) if FLAGS.memory_image_size else []
  runs = []
  for _ in range(FLAGS.rounds):
    for mode in ('true', 'false'):
      runs.append(train_once(mode, FLAGS.epochs))
      print(json.dumps(runs[-1]), flush=True)
  alone = pipeline_alone(config)
  print(json.dumps(dict(pipeline_alone=alone)), flush=True)
  summary = {}
  for mode in ('true', 'false'):
    mine = [r for r in runs if r['in_memory'] == mode]
    summary[mode] = dict(images_per_s=float(np.median([r['images_per_s'][-1] for r in mine])),
                         wall_seconds=float(np.median([r['wall_seconds'] for r in mine])),
                         peak_rss_mib=float(np.median([r['peak_rss_mib'] for r in mine])))
  result = dict(date=time.strftime('%Y-%m-%d'), cpu_count=os.cpu_count(),
                this_process_peak_rss_mib=round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                config_overrides=overrides(config), runs=runs, pipeline_alone=alone,
                memory_at_size=memory,
                median=summary,
                streamed_vs_in_memory=summary['false']['images_per_s'] /
                summary['true']['images_per_s'])
  if FLAGS.out:
    bench.write_json(FLAGS.out, result)
  print(json.dumps(dict(median=summary, pipeline_alone=alone,
                        streamed_vs_in_memory=result['streamed_vs_in_memory']), indent=1))


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
